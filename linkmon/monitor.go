package linkmon

import (
	"context"
	"fmt"
	"maps"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/lifecycle"
)

// MonitorOptions are the parts of a Monitor that are not its Config.
type MonitorOptions struct {
	// Name is the endpoint's name, used in logs and events.
	Name string
	// Logger receives the monitor's logs; nil discards them.
	Logger hclog.Logger
	// StatePath, when set, is the file the measured status is kept in
	// across restarts of the process (written on every class change, on
	// Stop and on Close).
	StatePath string
	// Profiles are the per-class overrides of the sync parameters the
	// monitor starts with; SetProfile changes them.
	Profiles map[edgesync.LinkClass]Override
	// Now is the clock for measurement timestamps; nil is time.Now.
	Now func() time.Time
	// ProbeCapBps, when set, caps the capacity the probe budget is a
	// share of, in bit/s (0 is no cap): a data budget's average rate, so
	// that probes spend their share of the allowance, not of the link
	// (docs/budget.md).
	ProbeCapBps func() float64
}

// Monitor bounds and tuning.
const (
	// lossPings is how many recent pings the loss figure is taken over.
	lossPings = 80
	// jitterPings is how many recent RTTs the jitter figure is taken over.
	jitterPings = 8
	// maxPendingPings bounds the pings awaiting an answer.
	maxPendingPings = 64
	// earlyProbeGap is the soonest a probe follows another when RTT or
	// loss jumped or the link came back.
	earlyProbeGap = time.Second
	// rttJump is the relative RTT change that triggers an early probe.
	rttJump = 0.5
)

// Monitor measures one endpoint's link, classifies it, and owns what
// follows from the class: it holds the operator's pin and the per-class
// overrides, derives the effective class and sync parameters, and
// publishes them (Snapshot, Parameters, Subscribe; see link.go).
//
// A Monitor lives as long as its endpoint. It measures between Start and
// Stop (or Close): one goroutine samples (a ping every SampleInterval,
// passive counters), another runs bandwidth probes when due. Restart
// measures again with new settings. A stopped monitor keeps its class,
// pin, overrides and parameters, and still takes pins and overrides.
// Attach gives it the agent's connection; without one every sample is
// stale and the link becomes intermittent within about MinOutage. All
// methods are safe for concurrent use.
type Monitor struct {
	name string
	log  hclog.Logger
	now  func() time.Time
	path string
	// probeCap caps the probe budget's capacity
	// (MonitorOptions.ProbeCapBps). It must not call back into the
	// monitor.
	probeCap func() float64

	runMu sync.Mutex     // serialises Start, Stop, Restart and Close
	wg    sync.WaitGroup // the goroutines of the running measurement

	probeMu     sync.Mutex // one bandwidth probe at a time
	lastPackets int        // packets per train of the last probe; under probeMu
	shrink      int        // caps the next probe's trains after an unanswered one (unmeasured); under probeMu
	saveMu      sync.Mutex // one writer of the status file
	meter       DeliveryMeter

	mu sync.Mutex
	// cfg changes only while nothing measures (Restart), under probeMu
	// and mu.
	cfg       Config
	overrides map[edgesync.LinkClass]Override
	adj       *Adjuster // DefaultProfiles with the overrides applied
	pin       Pin

	// What the link measures. Kept across runs: status, latest, capBps
	// and stats; the rest is readied afresh for each run (resetRun).
	cls      *Classifier
	status   Status
	latest   Measurement
	history  []Measurement // ring
	histNext int
	histFull bool
	budget   *Budget
	capBps   float64   // latest capacity estimate: train, check or delivery rate
	capAt    time.Time // when it was taken (zero: carried over from a previous run)
	capRef   float64   // capacity before a check saw a drop that no probe has confirmed yet
	// trainBps is the latest capacity measured by trains (a probe, a
	// confirmed check), never by a delivery rate: what a delivery rate is
	// judged against (sampler.linkRef).
	trainBps float64
	// remeasure asks the sampler for a bandwidth probe now (the path
	// changed class).
	remeasure bool
	stats     MonitorStats

	// What follows from it, published (link.go).
	class   edgesync.LinkClass // effective (pinned) class
	params  SyncParameters
	since   time.Time
	reason  string
	gen     uint64
	changed chan struct{} // closed and replaced when params change
	subs    map[int]*subscriber
	nextSub int

	prober   *Prober
	conn     *quic.Conn
	cancel   context.CancelFunc // ends the running measurement; nil while none runs
	ran      bool               // a measurement has run since the run state was readied
	closed   bool
	attachCh chan struct{}
	wakeCh   chan struct{} // early probe
	idleSt   idleState     // idle.go
}

// NewMonitor validates cfg and the profile overrides and returns a
// monitor that does not measure yet, restored from opts.StatePath when
// that file holds a status (an unreadable file is logged and ignored: the
// monitor starts from nothing).
func NewMonitor(cfg Config, opts MonitorOptions) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new monitor: %w", err)
	}
	adj, err := NewAdjuster(opts.Profiles)
	if err != nil {
		return nil, fmt.Errorf("new monitor: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	m := &Monitor{
		cfg: cfg, name: opts.Name, log: log.Named("linkmon").With("endpoint", opts.Name), now: now,
		path: opts.StatePath, overrides: maps.Clone(opts.Profiles), adj: adj, probeCap: opts.ProbeCapBps,
		status: Status{Class: edgesync.Unknown}, subs: make(map[int]*subscriber),
		changed:  make(chan struct{}),
		attachCh: make(chan struct{}, 1), wakeCh: make(chan struct{}, 1),
	}
	m.idleSt.wake = make(chan struct{}, 1)
	if m.path != "" {
		p, err := loadState(m.path)
		if err != nil {
			m.log.Warn("ignoring the persisted link status", "error", err)
		} else if p != nil {
			m.restore(p)
		}
	}
	m.resetRun()
	m.class, m.params = m.adj.Effective(m.status, m.pin)
	m.since, m.reason = m.now(), noMeasurement
	return m, nil
}

func (m *Monitor) restore(p *persisted) {
	m.status = p.Status
	m.status.DownSince = nil // reachability is judged afresh (reach.go)
	m.latest = p.Latest
	m.latest.Stale = true
	if p.CapacityBps > 0 && !math.IsInf(p.CapacityBps, 0) {
		m.capBps = p.CapacityBps
	}
	m.log.Info("restored link status", "class", p.Status.Class, "since", p.Status.Since, "capacity", FormatBps(p.CapacityBps))
}

// resetRun readies the measuring state for the next run from what the
// monitor keeps across runs (the class and when it was entered, the latest
// figures, the capacity), as a monitor restored from its status file
// starts: a classifier with no samples, a fresh budget and delivery meter,
// no history. Called with probeMu and mu held while nothing measures (or
// from NewMonitor).
func (m *Monitor) resetRun() {
	m.cls = newClassifier(m.cfg.Classifier)
	m.cls.Restore(m.status.Class, m.status.Since)
	if m.prober != nil {
		// The connection is up: what was missed before this run is not
		// an outage of it.
		m.cls.Reconnected(m.now())
	}
	m.status.Samples, m.status.Missed = 0, 0
	if !m.latest.At.IsZero() {
		m.latest.Stale = true
	}
	m.history = make([]Measurement, m.cfg.HistoryLength)
	m.histNext, m.histFull = 0, false
	m.budget = newBudget(m.cfg.Budget)
	m.meter.reset()
	m.capAt, m.capRef, m.trainBps = time.Time{}, 0, 0
	m.remeasure = false
	m.lastPackets, m.shrink = 0, 0
	m.ran = false
}

// Start starts measuring: the sampling goroutine, and probes when due.
// The measurement runs until Stop, Restart or Close: ctx bounds the call,
// not the measurement (docs/architecture.md#lifecycle). It does nothing
// while the monitor measures, and fails with ErrClosed after Close. After
// Stop it measures afresh from what the monitor kept, as Restart does.
func (m *Monitor) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start monitor: %w", err)
	}
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if !m.startLocked(nil) {
		return fmt.Errorf("start monitor: %w", ErrClosed)
	}
	return nil
}

// Stop stops measuring, waits for the goroutines and saves the status.
// The monitor keeps its class, pin, overrides, parameters and connection,
// and answers as before; Start or Restart measures again. It fails with
// ErrNotRunning when the monitor was not measuring.
func (m *Monitor) Stop() error {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if !m.stopLocked() {
		return fmt.Errorf("stop: %w", ErrNotRunning)
	}
	if err := m.save(); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	return nil
}

// Restart measures with cfg: it stops the running measurement, if any,
// and starts a fresh one from what the monitor kept (the class and its
// latest figures and capacity, the pin and the per-class overrides), as a
// monitor restored from its status file would. A bad cfg is refused with
// an error naming the field, and the monitor stays as it was. It fails
// with ErrClosed after Close.
func (m *Monitor) Restart(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("restart monitor: %w", err)
	}
	m.runMu.Lock()
	defer m.runMu.Unlock()
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return fmt.Errorf("restart monitor: %w", ErrClosed)
	}
	if m.stopLocked() {
		if err := m.save(); err != nil {
			m.log.Warn("saving link status", "error", err)
		}
	}
	m.startLocked(&cfg)
	return nil
}

// startLocked starts a measurement with cfg (nil keeps the current one),
// readying a fresh run state first when the configuration changes or a
// measurement ran before. It reports false after Close. Called with runMu
// held.
func (m *Monitor) startLocked(cfg *Config) bool {
	m.mu.Lock()
	closed, running, fresh := m.closed, m.cancel != nil, cfg != nil || m.ran
	m.mu.Unlock()
	if closed || running {
		return !closed
	}
	if fresh {
		// probeMu first: an on-demand Measure may be probing.
		m.probeMu.Lock()
		m.mu.Lock()
		if cfg != nil {
			m.cfg = *cfg
		}
		m.resetRun()
		m.mu.Unlock()
		m.probeMu.Unlock()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.mu.Lock()
	m.cancel, m.ran = cancel, true
	m.mu.Unlock()
	m.wg.Add(1)
	go m.loop(ctx)
	return true
}

// stopLocked ends the running measurement and waits for its goroutines;
// it reports whether one ran. Called with runMu held.
func (m *Monitor) stopLocked() bool {
	m.mu.Lock()
	cancel := m.cancel
	m.cancel = nil
	m.mu.Unlock()
	if cancel == nil {
		return false
	}
	cancel()
	m.wg.Wait()
	return true
}

// Measuring reports whether the monitor measures (between Start and Stop).
func (m *Monitor) Measuring() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cancel != nil
}

// Close stops measuring, detaches, closes subscriber channels and saves
// the status. It is idempotent. A closed monitor still answers Snapshot,
// Status and the other reads.
func (m *Monitor) Close() error {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if !lifecycle.MarkClosed(&m.mu, &m.closed) {
		return nil
	}
	m.stopLocked()
	m.Detach()
	m.mu.Lock()
	for id, s := range m.subs {
		close(s.ch)
		delete(m.subs, id)
	}
	m.mu.Unlock()
	return m.save()
}

// Attach gives the monitor the agent's connection to the core: conn
// (datagrams enabled), the transport it was dialled on, and the probe
// session from the core's Welcome. It replaces a previous connection and
// is kept while the monitor is stopped.
func (m *Monitor) Attach(conn *quic.Conn, tr *quic.Transport, probeSession uint64) error {
	p, err := NewProber(conn, tr, probeSession)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.closeProber(p)
		return fmt.Errorf("attach: %w", ErrClosed)
	}
	old := m.prober
	m.prober, m.conn = p, conn
	// The handshake just crossed the link: what was missed while dialling
	// is not an outage of this connection.
	m.cls.Reconnected(m.now())
	m.status.Missed = 0
	m.mu.Unlock()
	if old != nil {
		m.closeProber(old)
	}
	m.signal(m.attachCh)
	m.signal(m.wakeCh)
	return nil
}

// Detach forgets the connection (it was lost); samples go stale until the
// next Attach.
func (m *Monitor) Detach() {
	m.mu.Lock()
	p := m.prober
	m.prober, m.conn = nil, nil
	m.mu.Unlock()
	if p != nil {
		m.closeProber(p)
	}
	m.signal(m.attachCh)
}

// closeProber closes a prober the monitor no longer uses.
func (m *Monitor) closeProber(p *Prober) {
	if err := p.Close(); err != nil {
		m.log.Warn("closing the prober of a lost connection", "error", err)
	}
}

func (m *Monitor) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// DeliveryMeter is what the sender reports acknowledged bytes and
// app-limited moments into.
func (m *Monitor) DeliveryMeter() *DeliveryMeter { return &m.meter }

// Status returns the classifier's current view.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.statusLocked()
}

// statusLocked returns a copy of the status that shares nothing with it.
// Called with m.mu held.
func (m *Monitor) statusLocked() Status {
	st := m.status
	if st.LastChange != nil {
		lc := *st.LastChange
		st.LastChange = &lc
	}
	return st
}

// Latest returns the most recent measurement (zero before the first).
func (m *Monitor) Latest() Measurement {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.latest
}

// Capacity returns the latest bandwidth probe estimate in bit/s (0 if
// none yet) and when it was taken.
func (m *Monitor) Capacity() (float64, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.capBps, m.capAt
}

// History returns the kept measurements of the last window, oldest first
// (at most Config.HistoryLength, of the current or last measurement run).
func (m *Monitor) History(window time.Duration) []Measurement {
	m.mu.Lock()
	defer m.mu.Unlock()
	cut := m.now().Add(-window)
	var out []Measurement
	n := m.histNext
	if m.histFull {
		n = len(m.history)
	}
	for i := range n {
		j := i
		if m.histFull {
			j = (m.histNext + i) % len(m.history)
		}
		if h := m.history[j]; !h.At.Before(cut) {
			out = append(out, h)
		}
	}
	return out
}

// observe feeds one measurement to the classifier and publishes what
// changed.
func (m *Monitor) observe(meas Measurement) {
	m.mu.Lock()
	st, ch := m.cls.Observe(meas)
	m.status = st
	m.latest = meas
	m.history[m.histNext] = meas
	m.histNext++
	if m.histNext == len(m.history) {
		m.histNext, m.histFull = 0, true
	}
	if ch != nil && ch.New == edgesync.Satellite && rank(ch.Old) >= 0 {
		// The budget fraction halves on satellite: what was spent under
		// the old class, at its fraction, would refuse every probe for up
		// to a minute, and the capacity of the new path is unknown.
		m.budget = newBudget(m.cfg.Budget)
		m.remeasure = true
		m.signal(m.wakeCh)
	}
	reason := ""
	if ch != nil {
		cls, params := m.adj.Effective(st, m.pin)
		m.publish(Event{Kind: LinkClassChanged, Endpoint: m.name, At: meas.At, Change: ch, Class: cls, Parameters: params})
		reason = ch.Reason
	}
	m.recompute(meas.At, reason)
	m.mu.Unlock()
	if ch != nil {
		m.log.Info("link class changed", "old", ch.Old, "new", ch.New, "reason", ch.Reason, "last_sample", ch.Trigger.String())
		if err := m.save(); err != nil {
			m.log.Warn("saving link status", "error", err)
		}
	}
}

func (m *Monitor) save() error {
	if m.path == "" {
		return nil
	}
	m.mu.Lock()
	p := &persisted{Version: stateVersion, Name: m.name, SavedAt: m.now(), Status: m.status,
		Latest: m.latest, CapacityBps: m.capBps}
	m.mu.Unlock()
	m.saveMu.Lock() // serialises writers of the file
	defer m.saveMu.Unlock()
	return saveState(m.path, p)
}

// MonitorStats counts a monitor's bandwidth probes and parameter changes
// over its life (across Stop and Restart).
type MonitorStats struct {
	Probes     int // probes run (some may have sent no train)
	Estimates  int // probes that produced an estimate
	Checks     int // check trains sent (between probes, see checkPackets)
	CheckDrops int // drops found by two checks and taken as the capacity
	// CheckJittery counts checks that read low by no more than the
	// path's jitter can spread a train (sampler.go, dropBeyondJitter).
	CheckJittery int
	Trains       int   // trains sent, check trains included
	TrainBytes   int64 // bytes of the trains
	PingBytes    int64 // estimated bytes of pings and their acknowledgements
	// Delivered counts light samples whose bandwidth was a link-filling
	// sender's delivery rate (they replace probes).
	Delivered int
	// SenderLimited counts delivery rates taken as lower bounds because
	// they were well below the capacity with no queue (basertt.go).
	SenderLimited int
	// ModeSwitches counts changes of the effective sync mode.
	ModeSwitches int64
	// IdleWakes counts an idle link's returns to the busy schedule on a
	// change its own samples showed, not on traffic (idle.go).
	IdleWakes int64
	// IdleDismissed counts the possible changes an idle link's pings
	// showed that pinging at the busy rate dismissed (idle.go).
	IdleDismissed int64
}

// Stats returns the counters.
func (m *Monitor) Stats() MonitorStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}
