package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync/atomic"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/budget"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// This file is the endpoint's data budget (docs/budget.md): the socket
// wrapper that counts what leaves, the sender's one check, the cheapest
// encoding as the allowance runs low, and the API of transport.budget.*.

// ErrNoBudget means a budget command names an endpoint without a budget
// block.
var ErrNoBudget = errors.New("no budget")

// endpointBudget is an endpoint's budget and the link class its bytes are
// counted under, read from the monitor at most every classRefresh.
type endpointBudget struct {
	*budget.Budget
	mon     *linkmon.Monitor
	class   atomic.Uint32
	classAt atomic.Int64
}

// classRefresh bounds how often counting a datagram reads the monitor.
const classRefresh = 100 * time.Millisecond

func (b *endpointBudget) linkClass() edgesync.LinkClass {
	now := time.Now().UnixNano()
	if now-b.classAt.Load() > int64(classRefresh) {
		b.class.Store(uint32(b.mon.Snapshot().Class)) // the effective class: pinned or measured
		b.classAt.Store(now)
	}
	return edgesync.LinkClass(b.class.Load())
}

// openBudget opens the endpoint's budget, if its config has one, with
// its spend file in the data dir.
func (e *endpoint) openBudget() error {
	if e.cfg.Budget == nil {
		return nil
	}
	eb := &endpointBudget{mon: e.mon}
	b, err := budget.Open(*e.cfg.Budget, budget.Options{
		Path:   filepath.Join(e.a.cfg.DataDir, "budget-"+safeName(e.name)+".json"),
		Logger: e.a.log, Name: e.name, Class: eb.linkClass,
	})
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", e.name, err)
	}
	eb.Budget = b
	e.budget = eb
	return nil
}

// budgetConn wraps the endpoint's socket so that the budget counts every
// datagram sent, and starts renewing the period on time until ctx ends;
// done writes the exact spend. Without a budget pc is returned as is.
func (e *endpoint) budgetConn(ctx context.Context, pc net.PacketConn) (net.PacketConn, func()) {
	if e.budget == nil {
		return pc, func() {}
	}
	sctx, cancel := context.WithCancel(ctx)
	served := make(chan struct{})
	go func() {
		defer close(served)
		e.budget.Serve(sctx)
	}()
	return budget.Wrap(pc, e.budget.Budget), func() {
		cancel()
		<-served
		if err := e.budget.Close(); err != nil {
			e.log.Warn("budget spend not saved at stop; the next start counts the last saved figure", "error", err)
		}
	}
}

// budgetChanged is closed when held ops may go again (a new period, a
// reset, a new allowance); nil without a budget.
func (e *endpoint) budgetChanged() <-chan struct{} {
	if e.budget == nil {
		return nil
	}
	return e.budget.Changed()
}

// leaseWithin leases the next op of prios that the budget does not hold
// back: a held priority is not leased at all, so a large held backlog
// costs no lease per batch. Without a budget it is a plain Lease.
func (s *session) leaseWithin(prios ...edgesync.Priority) ([]outbox.Op, error) {
	if b := s.e.budget; b != nil {
		open := make([]edgesync.Priority, 0, len(prios))
		for _, p := range prios {
			if b.Decide(p) != budget.Hold {
				open = append(open, p)
			}
		}
		if len(open) == 0 {
			return nil, nil // Lease would take an empty list as every priority
		}
		prios = open
	}
	return s.ob.Lease(s.name, 1, prios...)
}

// budgetGate is the sender's check at lease time: summary says whether
// op goes as its summary only, hold whether it waits for the budget.
func (s *session) budgetGate(op outbox.Op, summary bool) (bool, bool) {
	b := s.e.budget
	if b == nil {
		return summary, false
	}
	switch b.Decide(op.Priority) {
	case budget.Hold:
		return summary, true
	case budget.SummaryOnly:
		if op.SummarySent {
			return true, true
		}
		return true, false
	}
	return summary, false
}

// budgetDelay is how much longer than the link alone wire bytes more of
// priority p take to leave from now because of the data budget: none
// while the budget lets them go, else until its period renews.
func (e *endpoint) budgetDelay(p edgesync.Priority, wire int64, now time.Time) time.Duration {
	if e.budget == nil || (e.budget.Decide(p) == budget.Send && wire <= e.budget.Room(p)) {
		return 0
	}
	return max(0, e.budget.Status().PeriodEnd.Sub(now))
}

// budgetHolds reports whether the data budget holds every op of priority
// p back now (never, without a budget).
func (s *session) budgetHolds(p edgesync.Priority) bool {
	return s.e != nil && s.e.budget != nil && s.e.budget.Decide(p) == budget.Hold
}

// budgetSendsFull reports whether the budget lets ops of priority p go
// in full now (always, without a budget).
func (s *session) budgetSendsFull(p edgesync.Priority) bool {
	return s.e.budget == nil || s.e.budget.Decide(p) == budget.Send
}

// budgetPause adds the budget to a transfer's pause check: at a chunk
// boundary an op whose priority the budget no longer lets send in full
// stops, and the next lease holds it.
func (s *session) budgetPause(p edgesync.Priority, paused func() bool) func() bool {
	b := s.e.budget
	if b == nil || paused == nil {
		return paused
	}
	return func() bool { return paused() || b.Decide(p) != budget.Send }
}

// economize moves p to the cheapest encoding once the budget runs low:
// the best compression level, and deltas where a base exists.
func (e *endpoint) economize(p linkmon.SyncParameters) linkmon.SyncParameters {
	if e.budget == nil || !e.budget.Economy() {
		return p
	}
	p.Compression = true
	p.Level = levels["best"]
	if p.Mode == edgesync.SyncFull || p.Mode == edgesync.SyncFullZstd || p.Mode == edgesync.SyncDelta {
		p.Mode = edgesync.SyncDeltaZstd
	}
	return p
}

// attribute records the op data a transfer put on the wire under its
// priority.
func (e *endpoint) attribute(p edgesync.Priority, n int64) {
	if e.budget != nil {
		e.budget.Attribute(p, n)
	}
}

// BudgetStatus is transport.budget.status: the budget's figures, and by
// priority what the outbox holds that the budget keeps back.
type BudgetStatus struct {
	Endpoint string `json:"endpoint"`
	Zone     string `json:"zone"`
	budget.Status
	// Held is, for each priority the budget holds back now (or lets send
	// only summaries), its backlog and since when.
	Held []BudgetHeld `json:"held"`
}

// BudgetHeld is one priority's backlog that the budget keeps back.
type BudgetHeld struct {
	Priority edgesync.Priority `json:"priority"`
	Verdict  budget.Verdict    `json:"verdict"`
	Ops      int               `json:"ops"`
	Bytes    int64             `json:"bytes"`
	Since    *time.Time        `json:"since,omitempty"`
}

// Budget returns transport.budget.status for an endpoint.
func (a *Agent) Budget(endpoint string) (BudgetStatus, error) {
	e, err := a.budgeted(endpoint)
	if err != nil {
		return BudgetStatus{}, err
	}
	return a.budgetStatus(e)
}

func (a *Agent) budgetStatus(e *endpoint) (BudgetStatus, error) {
	zone := "UTC"
	if z := e.cfg.Budget.Zone; z != nil {
		zone = z.String()
	}
	out := BudgetStatus{Endpoint: e.name, Zone: zone, Status: e.budget.Status(), Held: []BudgetHeld{}}
	st, err := a.ob.Stats()
	if err != nil {
		return out, err
	}
	var byPrio [edgesync.NumPriorities]outbox.Count
	if bp := st.ByEndpointPriority[e.name]; bp != nil {
		byPrio = *bp
	}
	for _, ps := range out.Priorities {
		if ps.Verdict == budget.Send {
			continue
		}
		c := byPrio[ps.Priority]
		out.Held = append(out.Held, BudgetHeld{Priority: ps.Priority, Verdict: ps.Verdict, Ops: c.Ops, Bytes: c.Bytes, Since: ps.HeldSince})
	}
	return out, nil
}

// SetBudget changes an endpoint's allowance from now on
// (transport.budget.set); it is kept across restarts.
func (a *Agent) SetBudget(endpoint string, allowance int64) (BudgetStatus, error) {
	e, err := a.budgeted(endpoint)
	if err != nil {
		return BudgetStatus{}, err
	}
	if err := e.budget.SetAllowance(allowance); err != nil {
		return BudgetStatus{}, invalidf("allowance: %v", err)
	}
	return a.budgetStatus(e)
}

// ResetBudget zeroes the spend of an endpoint's current period
// (transport.budget.reset).
func (a *Agent) ResetBudget(endpoint string) (BudgetStatus, error) {
	e, err := a.budgeted(endpoint)
	if err != nil {
		return BudgetStatus{}, err
	}
	e.budget.Reset()
	return a.budgetStatus(e)
}

// budgetRoom returns what tells a transfer of priority p how many bytes
// the budget has left before p stops; nil without a budget.
func (e *endpoint) budgetRoom(p edgesync.Priority) func() int64 {
	if e.budget == nil {
		return nil
	}
	return func() int64 { return e.budget.Room(p) }
}

// budgetWindow caps the lane's window of an op at a quarter of the
// budget's room left for its priority (at least one chunk): the chunks
// handed to the lane leave the socket whatever a later pause check says,
// an 8 MiB window would carry a priority that far past its stop, and the
// room is counted at the socket, so it does not see what other ops have
// handed to the lane but not yet sent.
func (l *laneTransfer) budgetWindow(window int64) int64 {
	if l.room == nil {
		return window
	}
	return min(window, max(l.room()/4, int64(l.ch.ChunkSize)+4096))
}

// probeCapBps caps the capacity the link monitor's probe budget is a
// share of: the data budget's rate (budget.ProbeCapBps); 0 without one.
func (e *endpoint) probeCapBps() float64 {
	if e.budget == nil {
		return 0
	}
	return e.budget.ProbeCapBps()
}
