package agent

import (
	"sync/atomic"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/outbox"
)

// This file is what transport.bandwidth.status says about summaries and
// backfill (docs/backfill.md): per priority, what is held as summary, what
// of it is being sent in full now, and when the backlog will have drained.

// SummaryStatus is one priority's summaries and backfill.
type SummaryStatus struct {
	// Held are the ops whose summary the core has and whose full data
	// waits or is on its way (Backfilling included).
	Held Backlog `json:"held"`
	// Backfilling are the held ops being sent in full now; Bytes is what
	// is left of them.
	Backfilling Backlog `json:"backfilling"`
	// DrainETA is when this priority's backlog, and everything that goes
	// before it, will have arrived in full: the wait for the next batch,
	// the bytes at the link's measured rate (compressed as the last
	// transfers were), and the wait for the data budget. Zero when the
	// bandwidth is unknown.
	DrainETA time.Duration `json:"drain_eta_ns"`
}

// batchClock is when an endpoint's sender opens its next batch of
// ordinary data; the sender sets it, Status reads it.
type batchClock struct {
	next atomic.Int64 // Unix nanoseconds; 0 while a batch is open
}

// set records the sender's batch state.
func (c *batchClock) set(open bool, next time.Time) {
	if open {
		c.next.Store(0)
		return
	}
	c.next.Store(next.UnixNano())
}

// wait returns how long ordinary data waits for the next batch at now.
func (c *batchClock) wait(now time.Time) time.Duration {
	n := c.next.Load()
	if n == 0 {
		return 0
	}
	return max(0, time.Unix(0, n).Sub(now))
}

// wireRatio is the encoded bytes per payload byte of the endpoint's
// transfers so far, 1 before any.
func (s *endpointStats) wireRatio() float64 {
	var plain, wire int64
	for m := codec.ModeFull; m <= codec.ModeDeltaZstd; m++ {
		plain += s.rawByMode[m].Load()
		wire += s.wireByMode[m].Load()
	}
	if plain <= 0 || wire <= 0 {
		return 1
	}
	return float64(wire) / float64(plain)
}

// drainEstimate fills st's DrainETA and Summaries: ordinary data drains
// strictly by priority after the next batch opens; critical and schema go
// at once. byPrio and summarized are the endpoint's backlog and held
// summaries from the outbox.
func (e *endpoint) drainEstimate(st *LinkStatus, byPrio, summarized [edgesync.NumPriorities]outbox.Count, now time.Time) {
	var inFlight [edgesync.NumPriorities]Backlog // bytes sent of transfers in flight, backfills apart
	var backfilling [edgesync.NumPriorities]Backlog
	for _, t := range st.Transfers {
		inFlight[t.Priority].Bytes += t.Sent
		if t.Backfill {
			backfilling[t.Priority].Ops++
			backfilling[t.Priority].Bytes += max(0, t.Size-t.Sent)
		}
	}
	bw := st.Figures.BandwidthBps
	ratio := e.stats.wireRatio()
	wait := e.nextBatch.wait(now)
	var ahead int64 // payload bytes that go before, and with, this priority
	var total time.Duration
	for _, p := range edgesync.Priorities() {
		ahead += max(0, byPrio[p].Bytes-inFlight[p].Bytes)
		var eta time.Duration
		if bw > 0 && byPrio[p].Ops > 0 {
			eta = time.Duration(float64(ahead) * ratio * 8 / bw * float64(time.Second))
			if !p.SendsAtOnce() {
				eta += wait
			}
			eta += e.budgetDelay(p, int64(float64(ahead)*ratio), now)
			total = max(total, eta)
		}
		if !p.SendsAtOnce() {
			st.Summaries[p.String()] = SummaryStatus{
				Held:        Backlog{Ops: summarized[p].Ops, Bytes: summarized[p].Bytes},
				Backfilling: backfilling[p],
				DrainETA:    eta,
			}
		}
	}
	st.DrainETA = total
}

// summaryHeld fills each endpoint's SummaryHeld from the outbox; an
// outbox that cannot say (closed) leaves them empty.
func (a *Agent) summaryHeld(eps []EndpointStats) {
	st, err := a.ob.Stats()
	for i := range eps {
		eps[i].SummaryHeld = map[string]Backlog{}
		if err != nil {
			continue
		}
		var held [edgesync.NumPriorities]outbox.Count
		if sp := st.Summarized[eps[i].Endpoint]; sp != nil {
			held = *sp
		}
		for _, p := range edgesync.Priorities() {
			if !p.SendsAtOnce() {
				eps[i].SummaryHeld[p.String()] = Backlog{Ops: held[p].Ops, Bytes: held[p].Bytes}
			}
		}
	}
}
