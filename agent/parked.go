package agent

import (
	"sync"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// Parked ops: the core refused them for a reason that another attempt on
// the same connection may not cure at once (its quota, a limit, a
// protocol disagreement; see session.refused). They stay leased, so that
// the rest of the outbox flows past them, and go back to the outbox after
// a backoff that doubles per refusal of the same op, up to maxParkBackoff:
// a quota an operator raises, or a core upgraded in place, lets them
// through without waiting for the connection to end, which may be weeks.
var (
	firstParkBackoff = 10 * time.Second
	maxParkBackoff   = 10 * time.Minute
)

// parkedOps holds one session's parked ops and their timers. Safe for
// concurrent use: the timers release ops from their own goroutines.
type parkedOps struct {
	mu      sync.Mutex
	closed  bool
	release func(...edgesync.OpID) // gives an op back to the outbox
	wake    func()                 // tells the session that ops wait
	timers  map[edgesync.OpID]*time.Timer
	backoff map[edgesync.OpID]time.Duration // per op, across its refusals
}

func newParkedOps(release func(...edgesync.OpID), wake func()) *parkedOps {
	return &parkedOps{release: release, wake: wake,
		timers: map[edgesync.OpID]*time.Timer{}, backoff: map[edgesync.OpID]time.Duration{}}
}

// park holds id until its backoff has passed, then gives it back.
func (p *parkedOps) park(id edgesync.OpID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.backoff[id]
	if d == 0 {
		d = firstParkBackoff
	} else {
		d = min(2*d, maxParkBackoff)
	}
	p.backoff[id] = d
	p.holdLocked(id, d)
}

// parkFor holds id for d, leaving its own backoff as it is: an op refused
// for the core's trouble rather than its own (session.refused).
func (p *parkedOps) parkFor(id edgesync.OpID, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holdLocked(id, d)
}

// holdLocked gives id back after d, or at once if the session has ended.
func (p *parkedOps) holdLocked(id edgesync.OpID, d time.Duration) {
	if p.closed {
		p.release(id)
		return
	}
	if t := p.timers[id]; t != nil {
		t.Stop()
	}
	p.timers[id] = time.AfterFunc(d, func() { p.due(id) })
}

// due gives id back to the outbox unless the session has ended, which
// gave it back already.
func (p *parkedOps) due(id edgesync.OpID) {
	p.mu.Lock()
	if p.closed || p.timers[id] == nil {
		p.mu.Unlock()
		return
	}
	delete(p.timers, id)
	p.release(id)
	p.mu.Unlock()
	p.wake()
}

// forget drops what is known of id once it is settled.
func (p *parkedOps) forget(id edgesync.OpID) {
	p.mu.Lock()
	delete(p.backoff, id)
	p.mu.Unlock()
}

// close stops the timers and gives every op still parked back to the
// outbox; it returns how many.
func (p *parkedOps) close() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	ids := make([]edgesync.OpID, 0, len(p.timers))
	for id, t := range p.timers {
		t.Stop()
		ids = append(ids, id)
	}
	clear(p.timers)
	p.release(ids...)
	return len(ids)
}
