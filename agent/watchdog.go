package agent

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/wire"
)

// The connection watchdog. A core that lost its state (restarted) answers
// an old connection's packets with a stateless reset, which ends it at once
// (docs/core.md#restarts); one that cannot (its TLS key changed, or a
// middlebox dropped the path's state) leaves the agent on a connection
// nothing answers, until QUIC's idle timeout (45 s). So while the link
// monitor sees pings unanswered for redialAfter, the watchdog tries a new
// connection beside the old one: if the core answers it while the old one
// stays silent, the old one is dead and is closed with that reason, and the
// endpoint goes on with the new one. When the address in use answers no new
// connection either (the core died), the endpoint's other addresses are
// tried in turn, and the first that answers becomes the address in use
// (failover.go). A link that is down answers none: the old connection stays
// for the link's return, as it would without the watchdog.

const (
	// redialAfter is how long pings go unanswered before a new connection
	// is tried.
	redialAfter = 3 * time.Second
	// trialDialTimeout bounds a tried connection's handshake.
	trialDialTimeout = 5 * time.Second
	// watchdogPoll is how often the watchdog looks at the link.
	watchdogPoll = 250 * time.Millisecond
)

// spareConn is a connection the watchdog dialled, with its WELCOME.
type spareConn struct {
	conn *quic.Conn
	w    *wire.Welcome
}

// watchdog watches one connection of the endpoint's run.
type watchdog struct {
	e      *endpoint
	spare  atomic.Pointer[spareConn]
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startWatchdog watches conn until stop; tr is the endpoint's transport,
// on which a new connection is tried.
func (e *endpoint) startWatchdog(ctx context.Context, conn *quic.Conn, tr *quic.Transport) *watchdog {
	ctx, cancel := context.WithCancel(ctx)
	wd := &watchdog{e: e, cancel: cancel}
	wd.wg.Go(func() { wd.run(ctx, conn, tr) })
	return wd
}

// stop ends the watchdog and returns the connection it dialled in the old
// one's place, if any (the caller owns it).
func (wd *watchdog) stop() *spareConn {
	wd.cancel()
	wd.wg.Wait()
	return wd.spare.Load()
}

func (wd *watchdog) run(ctx context.Context, conn *quic.Conn, tr *quic.Transport) {
	e := wd.e
	t := time.NewTicker(watchdogPoll)
	defer t.Stop()
	var downSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-conn.Context().Done():
			return
		case <-t.C:
		}
		switch {
		case !e.linkDown():
			downSince = time.Time{}
			continue
		case downSince.IsZero():
			downSince = time.Now()
			continue
		case time.Since(downSince) < redialAfter:
			continue
		}
		trial := func(ctx context.Context, addr string) (*quic.Conn, *wire.Welcome, error) {
			dctx, cancel := context.WithTimeout(ctx, trialDialTimeout)
			defer cancel()
			return e.dial(dctx, tr, addr)
		}
		nc, w, err := trial(ctx, e.addrs.current())
		how := "while a new one was answered: the core lost it"
		adopt := func() {}
		if err != nil {
			// The core in use answers nothing: another address may.
			silent := time.Since(downSince).Round(100 * time.Millisecond)
			nc, w, adopt, err = e.failOver(ctx, trial, fmt.Sprintf("no answer on the connection for %s, nor to a new one (%v)", silent, err))
			how = "nor to a new one, while another address answered"
		}
		if err != nil {
			// Nothing answers: the link is down. Keep the connection for
			// its return; try again after another redialAfter.
			e.log.Debug("no answer on the connection, and none to a new one", "error", err)
			downSince = time.Now()
			continue
		}
		silent := time.Since(downSince)
		if !e.linkDown() {
			// The old connection answers again: the link was back.
			nc.CloseWithError(quic.ApplicationErrorCode(wire.CodeShuttingDown), "not needed")
			downSince = time.Time{}
			continue
		}
		adopt() // the address in use moves only with the connection
		wd.spare.Store(&spareConn{conn: nc, w: w})
		reason := fmt.Sprintf("no answer on the connection for %s %s", silent.Round(100*time.Millisecond), how)
		e.log.Warn("connection dead; going on with a new one", "reason", reason)
		conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeShuttingDown), reason)
		return
	}
}
