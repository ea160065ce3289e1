package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// This file is the agent's API for its control surface (the control API,
// `edge-sync ctl`, the demo): one method per command of
// docs/design.md#control-api-commands.

// ErrNoMonitor means the endpoint's link monitor is stopped
// (transport.bandwidth.monitor.stop) or not attached to a connection.
var ErrNoMonitor = errors.New("link monitor not running for this endpoint")

// ErrNotLeased means an external ack or release names an op that is not
// leased through LeaseNext.
var ErrNotLeased = errors.New("op is not leased for external processing")

// Backlog is what waits in the outbox at one priority.
type Backlog struct {
	Ops   int   `json:"ops"`
	Bytes int64 `json:"bytes"`
}

// LinkStatus is transport.bandwidth.status: what the link is, why, and
// what the sender does about it.
type LinkStatus struct {
	Endpoint string `json:"endpoint"`
	// Address is the core address in use (or dialed first); Addresses
	// all of the endpoint's, the preferred first; AddressChoice why the
	// one in use was chosen (failover.go).
	Address       string        `json:"address"`
	Addresses     []string      `json:"addresses"`
	AddressChoice AddressChoice `json:"address_choice"`
	Connected     bool          `json:"connected"`
	// State says whether the core can be reached: connected, unreachable
	// (connected, but nothing answers: the link is down) or disconnected;
	// StateReason why, DownSince since when nothing answered (reach.go).
	State       LinkState  `json:"state"`
	StateReason string     `json:"state_reason"`
	DownSince   *time.Time `json:"down_since,omitempty"`
	// Class is the effective class (pinned or measured); Measured is what
	// the monitor says.
	Class    edgesync.LinkClass `json:"class"`
	Measured edgesync.LinkClass `json:"measured_class"`
	Since    time.Time          `json:"since"`
	Reason   string             `json:"reason"`
	Pin      string             `json:"pin"`
	// Figures are the median figures the class was judged on.
	Figures    linkmon.Measurement    `json:"figures"`
	Samples    int                    `json:"samples"`
	LastChange *linkmon.ClassChange   `json:"last_change,omitempty"`
	Params     linkmon.SyncParameters `json:"params"`
	Backlog    map[string]Backlog     `json:"backlog"`
	// Transfers are the ops being sent, the largest first, with the
	// bytes sent and the ETA at their current rate.
	Transfers []Transfer `json:"transfers"`
	// LastError is why the endpoint's last attempt to connect failed (a
	// wrong server_name, a DNS failure, a refused certificate) or its last
	// connection was lost, whether or not it is connected now; nil before
	// any. While it is not
	// connected, this is what the class cannot say: without a connection
	// it only sees unanswered samples.
	LastError *ConnError `json:"last_error,omitempty"`
	// DrainETA is when the whole backlog will have arrived: the wait for
	// the next batch, then its size, less what its transfers in flight
	// have sent, compressed as the last transfers were, over the measured
	// bandwidth (backfill_status.go); zero when the bandwidth is unknown.
	DrainETA time.Duration `json:"drain_eta_ns"`
	// Summaries says, per ordinary priority (high to background), what is
	// held as summary, what is backfilling and when it will have drained
	// (docs/backfill.md).
	Summaries map[string]SummaryStatus `json:"summaries"`
	// ProbeBytes counts what the link monitor has sent to measure the link.
	ProbeBytes int64 `json:"probe_bytes"`
	// Quarantined counts the ops of the whole outbox (not only this
	// endpoint's) that were found damaged on disk and will never be sent;
	// Damage says so in a sentence with what to do, "" when there are none.
	Quarantined Backlog `json:"quarantined"`
	Damage      string  `json:"damage,omitempty"`
	// Budget is the endpoint's data budget (transport.budget.status);
	// absent without one.
	Budget *BudgetStatus `json:"budget,omitempty"`
	// CoreRefusing says that the core refuses to store ops for a reason
	// on its side (its store is full), so they stay queued here; absent
	// while it stores (corefull.go).
	CoreRefusing *CoreRefusal `json:"core_refusing,omitempty"`
}

// Status returns transport.bandwidth.status for an endpoint.
func (a *Agent) Status(endpoint string) (LinkStatus, error) {
	e, err := a.endpoint(endpoint)
	if err != nil {
		return LinkStatus{}, err
	}
	// One snapshot of the monitor's link state: the class and parameters
	// shown are the ones the sender reads (endpoint.params).
	ls := e.mon.Snapshot()
	out := LinkStatus{
		Endpoint: e.name, Address: e.addrs.current(), Addresses: e.addrs.list, AddressChoice: e.addrs.choice(), Connected: e.conn.Load() != nil,
		Class: ls.Class, Measured: ls.Status.Class, Since: ls.Since, Reason: ls.Reason,
		Pin: ls.Pin.String(), Figures: ls.Status.Median, Samples: ls.Status.Samples,
		LastChange: ls.Status.LastChange, Params: ls.Params, Backlog: map[string]Backlog{}, Summaries: map[string]SummaryStatus{},
		ProbeBytes: e.probeBytes(), Transfers: e.transfers.list(time.Now()), LastError: e.stats.lastErr.load(),
		CoreRefusing: e.full.status(),
	}
	out.State, out.StateReason, out.DownSince = linkState(out.Connected, ls.Status, out.LastError, time.Now())
	st, err := a.ob.Stats()
	if err != nil {
		return out, err
	}
	var byPrio, summarized [edgesync.NumPriorities]outbox.Count
	if bp := st.ByEndpointPriority[e.name]; bp != nil {
		byPrio = *bp
	}
	if sp := st.Summarized[e.name]; sp != nil {
		summarized = *sp
	}
	for _, p := range edgesync.Priorities() {
		c := byPrio[p]
		out.Backlog[p.String()] = Backlog{Ops: c.Ops, Bytes: c.Bytes}
	}
	e.drainEstimate(&out, byPrio, summarized, time.Now())
	if q := st.Quarantined; q.Ops > 0 {
		out.Quarantined = Backlog{Ops: q.Ops, Bytes: q.Bytes}
		out.Damage = a.damage(q)
	}
	if e.budget != nil {
		bs, err := a.budgetStatus(e)
		if err != nil {
			return out, err
		}
		out.Budget = &bs
	}
	return out, nil
}

// damage is the status line of a quarantine that is not empty: how many
// ops, the latest one's key and reason, and the command to run.
func (a *Agent) damage(q outbox.Count) string {
	ops := "ops"
	if q.Ops == 1 {
		ops = "op"
	}
	latest := ""
	if list, err := a.ob.Quarantined(); err == nil && len(list) > 0 {
		d := list[0]
		for _, x := range list[1:] {
			if x.At.After(d.At) {
				d = x
			}
		}
		latest = fmt.Sprintf("; latest %s key %q: %s", d.ID, d.Key, d.Reason)
	}
	return fmt.Sprintf("%d %s quarantined (%s), found damaged on the outbox's disk and never sent%s: run `edge-sync ctl transport.outbox.verify`",
		q.Ops, ops, units.FormatBytes(q.Bytes), latest)
}

// VerifyOutbox is transport.outbox.verify: it reads every op in the
// outbox, checks its checksums and SHA-256, and quarantines what fails
// (outbox.Outbox.Verify).
func (a *Agent) VerifyOutbox(ctx context.Context) (outbox.VerifyReport, error) {
	return a.ob.Verify(ctx)
}

// PurgeQuarantined is transport.outbox.purge: it deletes quarantined ops
// for good (all of them with no ids) and says what it deleted.
func (a *Agent) PurgeQuarantined(ids ...edgesync.OpID) (outbox.Count, error) {
	return a.ob.PurgeQuarantined(ids...)
}

// Quality returns transport.quality: the latest figures of an endpoint.
func (a *Agent) Quality(endpoint string) (linkmon.Measurement, error) {
	e, err := a.endpoint(endpoint)
	if err != nil {
		return linkmon.Measurement{}, err
	}
	if m := e.monitor(); m != nil {
		return m.Latest(), nil
	}
	return e.mon.Status().Median, nil
}

// Measure returns transport.bandwidth.measure: a measurement taken now.
func (a *Agent) Measure(ctx context.Context, endpoint string) (linkmon.Measurement, error) {
	e, err := a.endpoint(endpoint)
	if err != nil {
		return linkmon.Measurement{}, err
	}
	m := e.monitor()
	if m == nil {
		return linkmon.Measurement{}, ErrNoMonitor
	}
	return m.Measure(ctx)
}

// History returns transport.bandwidth.history: measurements within window.
func (a *Agent) History(endpoint string, window time.Duration) ([]linkmon.Measurement, error) {
	e, err := a.endpoint(endpoint)
	if err != nil {
		return nil, err
	}
	m := e.monitor()
	if m == nil {
		return nil, ErrNoMonitor
	}
	return m.History(window), nil
}

// RuntimeConfig is transport.config: the configuration in force.
type RuntimeConfig struct {
	Name      string                                      `json:"name"`
	Endpoints []config.Endpoint                           `json:"endpoints"`
	Outbox    config.Outbox                               `json:"outbox"`
	Profiles  map[edgesync.LinkClass]linkmon.ClassProfile `json:"profiles"`
	Overrides map[edgesync.LinkClass]linkmon.Override     `json:"overrides"`
	Pins      map[string]string                           `json:"pins"`
	Params    map[string]linkmon.SyncParameters           `json:"params"`
	Classes   map[string]edgesync.LinkClass               `json:"classes"`
	_         struct{}                                    `json:"-"`
}

// Config returns transport.config.
func (a *Agent) Config() RuntimeConfig {
	a.mu.Lock()
	ov := a.overrides
	eps := a.endpointsLocked()
	a.mu.Unlock()
	rc := RuntimeConfig{
		Name: a.cfg.Name, Outbox: a.cfg.Outbox,
		Profiles: map[edgesync.LinkClass]linkmon.ClassProfile{}, Overrides: ov,
		Pins: map[string]string{}, Params: map[string]linkmon.SyncParameters{}, Classes: map[string]edgesync.LinkClass{},
	}
	if len(eps) > 0 {
		// Every monitor holds the same overrides (SetProfile): the first
		// one's profiles are every endpoint's.
		for _, c := range edgesync.LinkClasses() {
			rc.Profiles[c] = eps[0].mon.Profile(c)
		}
	}
	for _, e := range eps {
		ec := e.cfg
		ec.Addresses = e.addrs.list // [] never null: one address is a list of one
		rc.Endpoints = append(rc.Endpoints, ec)
		ls := e.mon.Snapshot()
		rc.Pins[e.name], rc.Params[e.name], rc.Classes[e.name] = ls.Pin.String(), ls.Params, ls.Class
	}
	return rc
}

// SetProfile changes the sync parameters of a link class at run time
// (transport.config): every endpoint's monitor takes the override and
// publishes its new parameters at once, and endpoints added later start
// with it. The change lasts until the agent restarts: the config file is
// not rewritten.
func (a *Agent) SetProfile(class edgesync.LinkClass, o linkmon.Override) error {
	if !class.Valid() {
		return fmt.Errorf("set profile: unknown class %d", class)
	}
	a.mu.Lock()
	defer a.mu.Unlock() // held so that an endpoint added meanwhile gets the override
	// Every monitor checks the override alike: a refusal comes from the
	// first, before anything changed.
	for _, n := range a.endpointNamesLocked() {
		if err := a.eps[n].mon.SetProfile(class, o); err != nil {
			return err
		}
	}
	ov := maps.Clone(a.overrides)
	if ov == nil {
		ov = map[edgesync.LinkClass]linkmon.Override{}
	}
	ov[class] = o
	a.overrides = ov
	return nil
}

// Leased is an op handed out by LeaseNext for external processing.
type Leased struct {
	Op      outbox.Op `json:"op"`
	Expires time.Time `json:"lease_expires"`
	payload *outbox.Payload
}

// Payload returns a reader of the leased op's payload.
func (l *Leased) Payload() io.Reader { return io.NewSectionReader(l.payload, 0, l.Op.Size) }

// external tracks ops leased through LeaseNext, released when their lease
// expires so that a crashed consumer does not hold them for ever.
type external struct {
	mu     sync.Mutex
	leases map[edgesync.OpID]time.Time
}

// LeaseNext returns transport.bandwidth.sync.next: the next op of the
// endpoint (optionally only of the given priorities), leased for external
// processing for ttl. The sender does not send it while it is leased; the
// caller acks (it is done) or releases it (send it as usual). ok is false
// when nothing waits.
func (a *Agent) LeaseNext(endpoint string, ttl time.Duration, prios ...edgesync.Priority) (l Leased, ok bool, err error) {
	e, err := a.endpoint(endpoint)
	if err != nil {
		return Leased{}, false, err
	}
	a.expireExternal()
	ops, err := a.ob.Lease(e.name, 1, prios...)
	if err != nil || len(ops) == 0 {
		return Leased{}, false, err
	}
	pl, err := a.ob.OpenPayload(ops[0].ID)
	if err != nil {
		releaseOps(a.log, a.ob, ops[0].ID)
		return Leased{}, false, err
	}
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	exp := time.Now().Add(ttl)
	a.ext.mu.Lock()
	if a.ext.leases == nil {
		a.ext.leases = map[edgesync.OpID]time.Time{}
	}
	a.ext.leases[ops[0].ID] = exp
	a.ext.mu.Unlock()
	return Leased{Op: ops[0], Expires: exp, payload: pl}, true, nil
}

// AckExternal deletes an externally processed op.
func (a *Agent) AckExternal(id edgesync.OpID) error {
	if err := a.takeExternal(id); err != nil {
		return err
	}
	return a.ob.Ack(id)
}

// ReleaseExternal gives an externally leased op back to the sender.
func (a *Agent) ReleaseExternal(id edgesync.OpID) error {
	if err := a.takeExternal(id); err != nil {
		return err
	}
	if err := a.ob.Release(id); err != nil {
		return err
	}
	if op, err := a.ob.Get(id); err == nil {
		if e, err := a.endpoint(op.Endpoint); err == nil {
			e.wakeUp(op.Priority)
		}
	}
	return nil
}

func (a *Agent) takeExternal(id edgesync.OpID) error {
	a.ext.mu.Lock()
	defer a.ext.mu.Unlock()
	if _, ok := a.ext.leases[id]; !ok {
		return fmt.Errorf("%w: %s", ErrNotLeased, id)
	}
	delete(a.ext.leases, id)
	return nil
}

// expireExternal releases external leases past their expiry.
func (a *Agent) expireExternal() {
	now := time.Now()
	var ids []edgesync.OpID
	a.ext.mu.Lock()
	for id, exp := range a.ext.leases {
		if now.After(exp) {
			ids = append(ids, id)
			delete(a.ext.leases, id)
		}
	}
	a.ext.mu.Unlock()
	releaseOps(a.log, a.ob, ids...)
}
