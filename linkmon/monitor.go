package linkmon

import (
	"context"
	"errors"
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

// SatelliteBudgetFraction caps the probe budget while the link is
// satellite: 1 % of its capacity (pings included), half the default.
const SatelliteBudgetFraction = 0.01

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
		m.budget, _ = NewBudget(m.cfg.Budget)
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

// curBudget returns the probe budget in force.
func (m *Monitor) curBudget() *Budget {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.budget
}

// budgetCapacity is the capacity the budget is computed on: the latest
// estimate, scaled so that a satellite link gets SatelliteBudgetFraction.
// Called with m.mu held.
func (m *Monitor) budgetCapacity() float64 {
	// While a drop seen by a check awaits its probe, the budget stays
	// sized for the capacity its recent spends were made on.
	c := max(m.capBps, m.capRef)
	if c > 0 && m.status.Class == edgesync.Satellite && m.cfg.Budget.Fraction > SatelliteBudgetFraction {
		c *= SatelliteBudgetFraction / m.cfg.Budget.Fraction
	}
	return c
}

// Measure runs a bandwidth probe now (transport.bandwidth.measure) within
// the budget and returns the resulting measurement: the new capacity with
// the latest RTT, jitter and loss. It fails with ErrNotAttached without a
// connection and ErrBudgetExhausted when the budget allows no train.
func (m *Monitor) Measure(ctx context.Context) (Measurement, error) {
	m.mu.Lock()
	p := m.prober
	m.mu.Unlock()
	if p == nil {
		return m.Latest(), fmt.Errorf("measure: %w", ErrNotAttached)
	}
	res, err := m.probe(ctx, p)
	lat := m.Latest()
	if err != nil {
		return lat, fmt.Errorf("measure: %w", err)
	}
	out := Measurement{BandwidthBps: res.bps, RTT: lat.RTT, Jitter: lat.Jitter, Loss: lat.Loss,
		At: m.now(), Method: MethodActive}
	return out, nil
}

type probeResult struct {
	bps    float64
	trains int // trains sent
	bytes  int
	spend  time.Duration // spacing the budget asks before the next probe
}

// probe runs one bandwidth probe: up to TrainsPerProbe trains sized by
// ProbeSize, each taken from the budget, sent one after the other; the
// estimate is their median. The train estimate is stored for the light
// samples to carry.
func (m *Monitor) probe(ctx context.Context, p *Prober) (probeResult, error) {
	m.probeMu.Lock()
	defer m.probeMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ProbeTimeout)
	defer cancel()
	m.mu.Lock()
	capBps, bcap, jitter := m.capBps, m.budgetCapacity(), m.status.Median.Jitter
	ref := max(capBps, m.capRef)
	m.mu.Unlock()
	packets := trainPackets(capBps, jitter)
	if m.lastPackets > 0 {
		// Grow trains at most fourfold per probe: an early overestimate
		// from a short train must not turn into a flood.
		packets = min(packets, 4*m.lastPackets)
	}
	m.log.Trace("probe start", "packets", packets, "capacity", FormatBps(capBps))
	var res probeResult
	budget := m.curBudget()
	res.spend = budget.Spacing(bcap, m.cfg.TrainsPerProbe*packets*ProbePacketSize)
	var ests []float64
	var lastErr error
	for range m.cfg.TrainsPerProbe {
		if !budget.Take(m.now(), packets*ProbePacketSize, bcap) {
			break
		}
		tr, err := p.Train(ctx, packets)
		res.trains++
		res.bytes += tr.Bytes
		if err != nil {
			lastErr = err
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if tr.OK {
			ests = append(ests, tr.Bps)
		}
		if tr.OK && ref > 0 && tr.Bps < checkDrop*ref {
			// The link got slower: size the next train for it, so that
			// it does not overflow the queue and wait for a report.
			packets = max(MinTrainPackets, min(packets, trainPackets(tr.Bps, jitter)))
		}
		if len(ests) == 2 && ref > 0 && max(ests[0], ests[1]) < checkDrop*ref {
			// Two trains agree the link got much slower: the trains were
			// sized for the old link and queue long on the new one; a
			// third adds little but delay.
			break
		}
		m.log.Trace("train", "packets", packets, "received", tr.Received, "estimate", FormatBps(tr.Bps), "ok", tr.OK)
		// Let the train drain from the bottleneck before the next one.
		if tr.OK && tr.Bps > 0 {
			gap := time.Duration(float64(tr.Bytes*8) / tr.Bps * float64(time.Second))
			select {
			case <-time.After(min(gap, 100*time.Millisecond)):
			case <-ctx.Done():
			}
		}
	}
	m.log.Trace("probe", "trains", res.trains, "estimates", len(ests), "error", lastErr)
	m.mu.Lock()
	m.stats.Probes++
	m.stats.Trains += res.trains
	m.stats.TrainBytes += int64(res.bytes)
	m.mu.Unlock()
	if res.trains == 0 {
		return res, fmt.Errorf("probe: %w", ErrBudgetExhausted)
	}
	bps, ok := MedianEstimate(ests)
	m.lastPackets = packets
	if !ok {
		// Nothing measurable: trust the estimate less, so the next
		// trains are smaller.
		m.mu.Lock()
		m.capBps /= 2
		m.mu.Unlock()
		if lastErr == nil {
			// Reports came back: the link is there, the trains told little.
			lastErr = fmt.Errorf("%d trains, none measurable: %w", res.trains, errUnmeasurable)
		}
		return res, fmt.Errorf("probe: %w", lastErr)
	}
	res.bps = bps
	m.mu.Lock()
	m.stats.Estimates++
	if ref > 0 && bps < ref/2 {
		// The link got much slower: what was spent in the last minute was
		// sized for the old link and would stop probing for a minute.
		// Account afresh against the new capacity.
		m.budget, _ = NewBudget(m.cfg.Budget)
	}
	m.capBps, m.capAt, m.capRef = bps, m.now(), 0
	bcap = m.budgetCapacity()
	m.mu.Unlock()
	res.spend = m.curBudget().Spacing(bcap, m.cfg.TrainsPerProbe*trainPackets(bps, jitter)*ProbePacketSize)
	// A train much smaller than the new estimate asks for measured little;
	// measure again soon.
	if trainPackets(bps, jitter) > 2*packets {
		res.spend = 0
	}
	return res, nil
}

// errUnmeasurable: every train was answered but none could be measured.
var errUnmeasurable = errors.New("trains unmeasurable")

// jitterDispersion: a train's dispersion should be at least this many
// times the path's jitter, or the jitter of its first and last packets
// dominates the estimate.
const jitterDispersion = 10

// maxDispersion caps the lengthening for jitter.
const maxDispersion = 3 * TargetDispersion

// maxTrainPackets caps a train below ProbeSize's 1 MiB: the core reads
// raw packets through quic-go's queue of 32 non-QUIC packets, and a
// receiver that falls behind drops the rest of a long train. 384 packets
// are 36 ms at 100 Mbit/s.
const maxTrainPackets = 384

// trainPackets sizes a train: ProbeSize at the estimated capacity,
// lengthened on a jittery path so that its dispersion is at least
// jitterDispersion × jitter (within MaxProbeBytes). While the capacity is
// unknown it is the shortest train: it fits the budget's floor, and its
// estimate sizes the next probe.
func trainPackets(capBps float64, jitter time.Duration) int {
	if !(capBps > 0) {
		return MinTrainPackets
	}
	size := float64(ProbeSize(capBps))
	if d := min(jitterDispersion*jitter, maxDispersion); d > TargetDispersion {
		size = min(float64(MaxProbeBytes), max(size, capBps/8*d.Seconds()))
	}
	return min(maxTrainPackets, max(MinTrainPackets, int(math.Ceil(size/ProbePacketSize))))
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

// check sends one check train of the given length while the budget is
// spent to less than checkCeiling, and returns its result. The sampler
// spaces checks so that they take at most checkShare of the budget.
func (m *Monitor) check(ctx context.Context, p *Prober, packets int) (TrainResult, error) {
	m.probeMu.Lock()
	defer m.probeMu.Unlock()
	m.mu.Lock()
	bcap := m.budgetCapacity()
	m.mu.Unlock()
	// Checks stop at checkCeiling of the budget: the rest is the probes',
	// and a margin for a capacity estimated high.
	if !m.curBudget().Take(m.now(), packets*ProbePacketSize, checkCeiling*bcap) {
		return TrainResult{}, fmt.Errorf("check: %w", ErrBudgetExhausted)
	}
	tr, err := p.Train(ctx, packets)
	m.mu.Lock()
	m.stats.Checks++
	m.stats.Trains++
	m.stats.TrainBytes += int64(tr.Bytes)
	m.mu.Unlock()
	if err != nil {
		return tr, fmt.Errorf("check: %w", err)
	}
	return tr, nil
}

// Stats returns the probe counters.
func (m *Monitor) Stats() MonitorStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}
