package linkmon

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
)

// MonitorOptions are the parts of a Monitor that are not configuration.
type MonitorOptions struct {
	// Name is the endpoint's name, used in logs and events.
	Name string
	// Logger receives the monitor's logs; nil discards them.
	Logger hclog.Logger
	// StatePath, when set, is the file the last status is kept in across
	// restarts (written on every class or pin change and on Close).
	StatePath string
	// Now is the clock for measurement timestamps; nil is time.Now.
	Now func() time.Time
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

// Monitor measures one endpoint's link, classifies it and publishes the
// sync parameters. One goroutine samples (a ping every SampleInterval,
// passive counters), another runs bandwidth probes when due; both start
// with Start (or Run) and stop on Close. Attach gives it the agent's
// connection; without one every sample is stale and the link becomes
// intermittent within about MinOutage. All methods are safe for
// concurrent use.
type Monitor struct {
	cfg  Config
	name string
	log  hclog.Logger
	now  func() time.Time
	path string

	adj    *Adjuster
	budget *Budget
	meter  DeliveryMeter

	probeMu     sync.Mutex // one bandwidth probe at a time
	lastPackets int        // packets per train of the last probe; under probeMu
	saveMu      sync.Mutex // one writer of the status file

	mu       sync.Mutex
	cls      *Classifier
	status   Status
	latest   Measurement
	history  []Measurement // ring
	histNext int
	histFull bool
	pin      Pin
	class    edgesync.LinkClass // effective (pinned) class
	params   SyncParameters
	subs     map[int]*subscriber
	nextSub  int
	prober   *Prober
	conn     *quic.Conn
	capBps   float64 // latest capacity estimate: train, check or delivery rate
	capAt    time.Time
	capRef   float64 // capacity before a check saw a drop that no probe has confirmed yet
	// remeasure asks the sampler for a bandwidth probe now (the path
	// changed class).
	remeasure bool
	stats     MonitorStats
	closed    bool
	started   bool

	attachCh chan struct{}
	wakeCh   chan struct{} // early probe
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
}

// NewMonitor validates cfg and returns a stopped monitor, restored from
// opts.StatePath when that file holds a status (an unreadable file is
// logged and ignored: the monitor starts from nothing).
func NewMonitor(cfg Config, opts MonitorOptions) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new monitor: %w", err)
	}
	cls, err := NewClassifier(cfg.Classifier)
	if err != nil {
		return nil, fmt.Errorf("new monitor: %w", err)
	}
	adj, err := NewAdjuster(cfg.Profiles)
	if err != nil {
		return nil, fmt.Errorf("new monitor: %w", err)
	}
	budget, err := NewBudget(cfg.Budget)
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
	ctx, cancel := context.WithCancel(context.Background())
	m := &Monitor{
		cfg: cfg, name: opts.Name, log: log.Named("linkmon").With("endpoint", opts.Name), now: now,
		path: opts.StatePath, adj: adj, budget: budget, cls: cls,
		history: make([]Measurement, cfg.HistoryLength), subs: make(map[int]*subscriber),
		attachCh: make(chan struct{}, 1), wakeCh: make(chan struct{}, 1),
		ctx: ctx, cancel: cancel,
	}
	m.status = Status{Class: edgesync.Unknown}
	if m.path != "" {
		p, err := loadState(m.path)
		if err != nil {
			m.log.Warn("ignoring the persisted link status", "error", err)
		} else if p != nil {
			m.restore(p)
		}
	}
	m.class, m.params = m.adj.Effective(m.status, m.pin)
	return m, nil
}

func (m *Monitor) restore(p *persisted) {
	m.cls.Restore(p.Status.Class, p.Status.Since)
	m.status = p.Status
	m.status.Samples, m.status.Missed = 0, 0
	m.latest = p.Latest
	m.latest.Stale = true
	m.pin = p.Pin
	if p.CapacityBps > 0 && !math.IsInf(p.CapacityBps, 0) {
		m.capBps = p.CapacityBps
	}
	m.log.Info("restored link status", "class", p.Status.Class, "since", p.Status.Since, "capacity", FormatBps(p.CapacityBps))
}

// Start launches the sampling goroutine. Calling it twice, or after
// Close, does nothing.
func (m *Monitor) Start() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.closed {
		return
	}
	m.started = true
	m.wg.Add(1)
	go m.loop()
}

// Run starts the monitor and blocks until ctx ends, then closes it.
func (m *Monitor) Run(ctx context.Context) error {
	m.Start()
	select {
	case <-ctx.Done():
	case <-m.ctx.Done():
	}
	return m.Close()
}

// Close stops the goroutines, detaches, closes subscriber channels and
// saves the status. It is idempotent.
func (m *Monitor) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
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
// session from the core's Welcome. It replaces a previous connection.
func (m *Monitor) Attach(conn *quic.Conn, tr *quic.Transport, probeSession uint64) error {
	p, err := NewProber(conn, tr, probeSession)
	if err != nil {
		return fmt.Errorf("attach: %w", err)
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		p.Close()
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
		old.Close()
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
		p.Close()
	}
	m.signal(m.attachCh)
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
// (at most Config.HistoryLength).
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

// Parameters returns the effective sync parameters (pin applied).
func (m *Monitor) Parameters() SyncParameters {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.params
}

// Class returns the effective class (pin applied).
func (m *Monitor) Class() edgesync.LinkClass {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.class
}

// Pin returns the operator's pin.
func (m *Monitor) Pin() Pin {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pin
}

// SetPin sets the operator's pin (Pin{} is auto) and publishes the
// parameters if they change.
func (m *Monitor) SetPin(p Pin) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("set pin: %w", err)
	}
	m.mu.Lock()
	m.pin = p
	m.recompute(m.now())
	m.mu.Unlock()
	m.log.Info("pin set", "pin", p.String())
	if err := m.save(); err != nil {
		m.log.Warn("saving link status", "error", err)
	}
	return nil
}

// recompute derives the effective parameters and publishes a change.
// Called with m.mu held.
func (m *Monitor) recompute(at time.Time) {
	class, params := m.adj.Effective(m.status, m.pin)
	if class == m.class && params == m.params {
		return
	}
	m.class, m.params = class, params
	m.publish(Event{Kind: ParametersChanged, Endpoint: m.name, At: at, Class: class, Parameters: params})
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
	if ch != nil {
		cls, params := m.adj.Effective(st, m.pin)
		m.publish(Event{Kind: LinkClassChanged, Endpoint: m.name, At: meas.At, Change: ch, Class: cls, Parameters: params})
	}
	m.recompute(meas.At)
	m.mu.Unlock()
	if ch != nil {
		m.log.Info("link class changed", "old", ch.Old, "new", ch.New, "reason", ch.Reason, "measurement", ch.Trigger.String())
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
		Latest: m.latest, CapacityBps: m.capBps, Pin: m.pin}
	m.mu.Unlock()
	m.saveMu.Lock() // serialises writers of the file
	defer m.saveMu.Unlock()
	return saveState(m.path, p)
}

// MonitorStats counts a monitor's bandwidth probes.
type MonitorStats struct {
	Probes     int   // probes run (some may have sent no train)
	Estimates  int   // probes that produced an estimate
	Checks     int   // check trains sent (between probes, see checkPackets)
	CheckDrops int   // drops found by two checks and taken as the capacity
	Trains     int   // trains sent, check trains included
	TrainBytes int64 // bytes of the trains
	PingBytes  int64 // estimated bytes of pings and their acknowledgements
	// Delivered counts light samples whose bandwidth was a link-filling
	// sender's delivery rate (they replace probes).
	Delivered int
}

// Stats returns the probe counters.
func (m *Monitor) Stats() MonitorStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}
