package agent

import (
	"sync"
	"sync/atomic"
)

// Critical and schema ops overtake ordinary data on the link by their
// streams' urgency (docs/design.md, "Priorities"), but only data that is
// queued: when the dispatchers start urgent and ordinary ops together (a
// backlog after an outage, a batch that opens with an alarm in it), each
// goes in a worker of its own, and an ordinary worker that writes first
// has its stream's data in packets before the urgent stream holds any.
// With several ops on a stream, one such pack is a whole priority's ops,
// and the core stored six normal ops before six critical ones. So
// ordinary ops start only once every urgent stream started before them
// has its data written: from there on QUIC's urgency keeps the urgent
// data ahead. The wait is the time to hand the urgent bytes to QUIC, not
// a round trip.

// urgentWrites counts the urgent workers whose data is not yet written.
type urgentWrites struct {
	n    atomic.Int32
	wake chan struct{} // a worker's data is written; capacity 1
}

func newUrgentWrites() *urgentWrites {
	return &urgentWrites{wake: make(chan struct{}, 1)}
}

// begin counts a new urgent worker; the function it returns reports its
// data written, once however often it is called.
func (u *urgentWrites) begin() func() {
	u.n.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			u.n.Add(-1)
			select {
			case u.wake <- struct{}{}:
			default: // a wake-up is pending already
			}
		})
	}
}

// pending reports whether an urgent worker has not written its data yet.
func (u *urgentWrites) pending() bool { return u.n.Load() > 0 }
