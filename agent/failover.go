package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/wire"
)

// An endpoint with several core addresses (config addresses = [...], the
// preferred first; docs/design.md, "Several core addresses"):
//
//   - The connection loop dials the address in use; when that fails, or
//     the core closed the connection saying it shuts down, the others in
//     turn, and the first that answers is the new address in use. Only
//     when a whole round failed does the loop back off.
//   - Connected to another than the first, the endpoint dials the first
//     every fail_back (default 30 s) beside its session. When the first
//     answers, that connection replaces the session's: the transfers in
//     flight stop and resume on the first core where the shared store
//     says.
//
// Status shows the address in use and why it was chosen.

// addresses is an endpoint's address choice. Safe for concurrent use.
type addresses struct {
	list     []string
	failBack time.Duration

	mu     sync.Mutex
	cur    int       // index of the address in use (or to dial first)
	skip   bool      // the core at cur closed the connection: dial the next first
	reason string    // why cur was chosen
	since  time.Time // when
	moves  int64     // how often cur changed
	// movesBy counts the moves by MoveReason, for /metrics.
	movesBy [numMoveReasons]int64
	// back is the first address's connection, made by the fail-back
	// dialer, waiting for the loop to take it.
	back *dialed
}

type dialed struct {
	conn *quic.Conn
	w    *wire.Welcome
}

func newAddresses(cfg config.Endpoint) *addresses {
	fb := cfg.FailBack
	if fb <= 0 {
		fb = config.DefaultFailBack
	}
	return &addresses{list: cfg.AddressList(), failBack: fb, reason: "the first address", since: time.Now()}
}

// AddressChoice is which of an endpoint's addresses is in use and why.
type AddressChoice struct {
	Address string    `json:"address"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	Moves   int64     `json:"moves"`
}

func (a *addresses) choice() AddressChoice {
	a.mu.Lock()
	defer a.mu.Unlock()
	return AddressChoice{Address: a.list[a.cur], Reason: a.reason, Since: a.since, Moves: a.moves}
}

// current is the address in use.
func (a *addresses) current() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.list[a.cur]
}

func (a *addresses) moveLocked(i int, why MoveReason, reason string) {
	if i == a.cur {
		return
	}
	a.cur, a.reason, a.since = i, reason, time.Now()
	a.moves++
	a.movesBy[why]++
}

// lost notes how a connection to the address in use ended: a core that
// closed it because it shuts down is not dialed first again.
func (a *addresses) lost(conn *quic.Conn) {
	var ae *quic.ApplicationError
	if errors.As(context.Cause(conn.Context()), &ae) && ae.Remote && ae.ErrorCode == quic.ApplicationErrorCode(wire.CodeShuttingDown) {
		a.mu.Lock()
		a.skip = len(a.list) > 1
		a.mu.Unlock()
	}
}

// takeBack returns the first address's connection the fail-back dialer
// made, if any, and makes the first address the one in use.
func (a *addresses) takeBack() *dialed {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.back
	if d != nil {
		a.back = nil
		a.skip = false
		a.moveLocked(0, MoveFailBack, "back to the first address: it answers again")
	}
	return d
}

// dropBack closes a fail-back connection nobody took.
func (a *addresses) dropBack() {
	if d := a.takeBack(); d != nil {
		d.conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeShuttingDown), "")
	}
}

// connect returns a connection to one of the endpoint's cores: the one
// the fail-back dialer made, else the address in use, else the others in
// turn. It fails when every address failed, with each one's error.
func (e *endpoint) connect(ctx context.Context, dial func(context.Context, string) (*quic.Conn, *wire.Welcome, error)) (*quic.Conn, *wire.Welcome, error) {
	a := e.addrs
	if d := a.takeBack(); d != nil {
		return d.conn, d.w, nil
	}
	a.mu.Lock()
	start, skip, n := a.cur, a.skip, len(a.list)
	a.skip = false
	a.mu.Unlock()
	if skip {
		start = (start + 1) % n
	}
	var errs []error
	for k := range n {
		i := (start + k) % n
		conn, w, err := dial(ctx, a.list[i])
		if err == nil {
			a.mu.Lock()
			from := a.list[a.cur]
			if i != a.cur {
				kind, why := MoveShutdown, "the core closed the connection (shutting down)"
				if len(errs) > 0 {
					kind, why = MoveUnreachable, errs[len(errs)-1].Error()
				}
				a.moveLocked(i, kind, fmt.Sprintf("failed over from %s: %s", from, why))
			}
			a.mu.Unlock()
			return conn, w, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, nil, errors.Join(errs...)
}

// failOver dials the endpoint's other addresses in turn after the one in
// use answered nothing (why); it returns the first that answers, with
// adopt, which makes it the address in use once the caller takes the
// connection. It fails, with each one's error, when none answers or there
// is no other address.
func (e *endpoint) failOver(ctx context.Context, dial func(context.Context, string) (*quic.Conn, *wire.Welcome, error), why string) (conn *quic.Conn, w *wire.Welcome, adopt func(), err error) {
	a := e.addrs
	a.mu.Lock()
	cur, n := a.cur, len(a.list)
	a.mu.Unlock()
	errs := []error{errors.New(why)}
	for k := 1; k < n && ctx.Err() == nil; k++ {
		i := (cur + k) % n
		conn, w, err := dial(ctx, a.list[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		adopt := func() {
			a.mu.Lock()
			a.moveLocked(i, MoveUnreachable, fmt.Sprintf("failed over from %s: %s", a.list[cur], why))
			a.mu.Unlock()
		}
		return conn, w, adopt, nil
	}
	return nil, nil, nil, errors.Join(errs...)
}

// failBack runs, while the session on another than the first address
// lasts, a dialer of the first address every fail_back; when it connects,
// the returned context ends (the session stops) and the loop takes the
// new connection. stop ends the dialer and reports whether it connected.
func (e *endpoint) failBack(ctx context.Context, dial func(context.Context, string) (*quic.Conn, *wire.Welcome, error)) (sctx context.Context, stop func() (moved bool)) {
	a := e.addrs
	a.mu.Lock()
	cur := a.cur
	a.mu.Unlock()
	if cur == 0 {
		return ctx, func() bool { return false }
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan bool, 1)
	go func() {
		t := time.NewTicker(a.failBack)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				done <- false
				return
			case <-t.C:
			}
			conn, w, err := dial(sctx, a.list[0])
			if err != nil {
				e.log.Debug("first address still unreachable", "address", a.list[0], "error", err)
				continue
			}
			a.mu.Lock()
			a.back = &dialed{conn, w}
			a.mu.Unlock()
			e.log.Info("first address answers again; moving back", "address", a.list[0], "from", a.list[cur])
			cancel()
			done <- true
			return
		}
	}()
	return sctx, func() bool {
		cancel()
		return <-done
	}
}
