package agent

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/outbox"
)

// What transport.bandwidth.status says of the sender besides the link:
// the transfers in flight with their progress, and the last connection
// error.

// Transfer is an op being sent now.
type Transfer struct {
	ID       edgesync.OpID     `json:"id"`
	Key      string            `json:"key"`
	Priority edgesync.Priority `json:"priority"`
	// Size is the op's payload; Sent counts its plain bytes handed to the
	// connection (or its data lane) by this attempt, plus those the core
	// held already when the attempt resumed.
	Size    int64     `json:"size"`
	Sent    int64     `json:"sent"`
	Started time.Time `json:"started"`
}

// inflight is the transfers of an endpoint. Safe for concurrent use.
type inflight struct {
	mu sync.Mutex
	m  map[edgesync.OpID]*transfer
}

// transfer is one op's attempt in flight; sent is its progress, which the
// op's sender adds to.
type transfer struct {
	op      outbox.Op
	started time.Time
	sent    atomic.Int64
}

// begin records an attempt of op; end removes it.
func (f *inflight) begin(op outbox.Op) *transfer {
	t := &transfer{op: op, started: time.Now()}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[edgesync.OpID]*transfer{}
	}
	f.m[op.ID] = t
	return t
}

func (f *inflight) end(t *transfer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m[t.op.ID] == t {
		delete(f.m, t.op.ID)
	}
}

// list returns the transfers in flight, oldest first.
func (f *inflight) list() []Transfer {
	f.mu.Lock()
	out := make([]Transfer, 0, len(f.m))
	for _, t := range f.m {
		out = append(out, Transfer{ID: t.op.ID, Key: t.op.Key, Priority: t.op.Priority, Size: t.op.Size,
			Sent: min(t.sent.Load(), t.op.Size), Started: t.started})
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b Transfer) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return a.ID.Compare(b.ID)
	})
	return out
}

// ConnError is a failure to connect to the core, or the loss of a
// connection.
type ConnError struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// lastError keeps an endpoint's last ConnError.
type lastError struct{ p atomic.Pointer[ConnError] }

// note records err, unless it is nil or the cancellation of the
// endpoint's run.
func (l *lastError) note(err error) {
	if err == nil || errors.Is(err, context.Canceled) {
		return
	}
	l.p.Store(&ConnError{At: time.Now(), Error: err.Error()})
}

func (l *lastError) load() *ConnError { return l.p.Load() }

// lostCause is why a session on conn ended with err: the connection's own
// cause (an idle timeout, the core's close) when the session says only
// that the connection closed.
func lostCause(conn *quic.Conn, err error) error {
	if errors.Is(err, errConnLost) {
		if cause := context.Cause(conn.Context()); cause != nil {
			return cause
		}
	}
	return err
}

// resumeAt starts the transfer's progress at off, what the core holds.
func (t *opTransfer) resumeAt(off int64) {
	if t.sent != nil {
		t.sent.Store(off)
	}
}

// addSent counts n plain bytes handed to the connection.
func (t *opTransfer) addSent(n int64) {
	if t.sent != nil {
		t.sent.Add(n)
	}
}
