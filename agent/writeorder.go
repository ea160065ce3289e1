package agent

import (
	"sync"
	"sync/atomic"

	edgesync "github.com/edge-sync/edge-sync"
)

// QUIC sends the data of a more urgent stream first (each op's stream has
// its priority as its urgency; docs/design.md, "Priorities"), but only
// data already handed to it. When the dispatchers start ops of several
// priorities together (a backlog after an outage, a batch that opens with
// an alarm in it), each goes in a worker of its own, and a worker that
// writes first has its stream's data in packets before a more urgent one
// holds any. With several ops on a stream, one such pack is a whole
// priority's ops: the core stored six normal ops before six critical ones.
// So an op starts only once every stream of a more urgent level started
// before it has its data written (its header, for an op of several
// chunks); from there QUIC's urgency keeps that data ahead. The wait is
// the time to hand the bytes to QUIC, not a round trip.

// writeOrder counts the workers whose data is not yet written, by their
// stream's urgency.
type writeOrder struct {
	n    [edgesync.NumPriorities]atomic.Int32
	wake chan struct{} // a worker's data is written; capacity 1
}

func newWriteOrder() *writeOrder {
	return &writeOrder{wake: make(chan struct{}, 1)}
}

// urgencyOf is the urgency of the stream that carries op, or its summary:
// a summary goes at high's urgency at most (sendSummary).
func urgencyOf(p edgesync.Priority, summary bool) edgesync.Priority {
	if summary {
		return min(p, edgesync.High)
	}
	return p
}

// begin counts a new worker whose stream has urgency u; the function it
// returns reports its data written, once however often it is called.
func (w *writeOrder) begin(u edgesync.Priority) func() {
	n := &w.n[u]
	n.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			n.Add(-1)
			select {
			case w.wake <- struct{}{}:
			default: // a wake-up is pending already
			}
		})
	}
}

// pendingBefore reports whether a worker whose stream is more urgent than
// u has not written its data yet.
func (w *writeOrder) pendingBefore(u edgesync.Priority) bool {
	for q := range u {
		if w.n[q].Load() > 0 {
			return true
		}
	}
	return false
}
