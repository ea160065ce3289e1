package budget

import (
	"fmt"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// Status is a budget's figures now (transport.budget.status).
type Status struct {
	Allowance   int64     `json:"allowance"`
	Reserve     int64     `json:"reserve"`
	Period      Period    `json:"period"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	// Spent counts every byte the endpoint's socket sent this period.
	Spent int64 `json:"spent"`
	Left  int64 `json:"left"`
	// Forecast is what the period will have spent at its end if it goes
	// on at the rate it has had since it started.
	Forecast int64 `json:"forecast"`
	// ByClass is the spend by the link class it was sent on.
	ByClass map[string]int64 `json:"by_class"`
	// ByPriority is the op data the sender attributed to each priority;
	// Overhead is the rest of Spent (handshakes, acknowledgements, probes,
	// retransmissions, headers).
	ByPriority map[string]int64 `json:"by_priority"`
	Overhead   int64            `json:"overhead"`
	// Economy is whether ops go in the cheapest encoding.
	Economy bool `json:"economy"`
	// Priorities is each priority's stop and what the budget lets it do.
	Priorities []PriorityStatus `json:"priorities"`
}

// PriorityStatus is one priority's place in the budget.
type PriorityStatus struct {
	Priority edgesync.Priority `json:"priority"`
	// Threshold is the spend at which the priority stops.
	Threshold int64   `json:"threshold"`
	Verdict   Verdict `json:"verdict"`
	// HeldSince is when the budget first held the priority back in this
	// period; absent while it sends.
	HeldSince *time.Time `json:"held_since,omitempty"`
}

// MarshalText renders a verdict for JSON.
func (v Verdict) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Status returns the budget's figures now.
func (b *Budget) Status() Status {
	class := b.class()
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.rollLocked(now)
	st := Status{
		Allowance: b.cfg.Allowance, Reserve: b.cfg.Reserve, Period: b.cfg.Period,
		PeriodStart: b.start, PeriodEnd: b.end, Spent: b.spent, Left: max(0, b.cfg.Allowance-b.spent),
		ByClass: map[string]int64{}, ByPriority: map[string]int64{}, Economy: b.economy,
		Priorities: []PriorityStatus{},
	}
	if el := now.Sub(b.start); el > 0 {
		st.Forecast = int64(float64(b.spent) * float64(b.end.Sub(b.start)) / float64(el))
	}
	for c, n := range b.byClass {
		st.ByClass[c.String()] = n
	}
	var attributed int64
	for _, p := range edgesync.Priorities() {
		st.ByPriority[p.String()] = b.byPriority[p]
		attributed += b.byPriority[p]
		spent, limit := b.tightestLocked(p, class)
		ps := PriorityStatus{Priority: p, Threshold: b.cfg.limit(p, b.cfg.Allowance), Verdict: Send}
		switch {
		case spent >= limit:
			ps.Verdict = Hold
		case !p.SendsAtOnce() && float64(spent) >= float64(limit)-b.cfg.SummaryBand*float64(b.cfg.Allowance):
			ps.Verdict = SummaryOnly
		}
		if t := b.heldSince[p]; !t.IsZero() {
			ps.HeldSince = &t
		}
		st.Priorities = append(st.Priorities, ps)
	}
	st.Overhead = max(0, b.spent-attributed)
	return st
}

// UnmarshalText reads a verdict as MarshalText writes it.
func (v *Verdict) UnmarshalText(b []byte) error {
	for _, x := range []Verdict{Send, SummaryOnly, Hold} {
		if x.String() == string(b) {
			*v = x
			return nil
		}
	}
	return fmt.Errorf("verdict %q: want send, summary_only or hold", b)
}
