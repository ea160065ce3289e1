package budget

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/atomicfile"
	"github.com/edge-sync/edge-sync/internal/units"
)

// Verdict is what the budget lets an op of a priority do now.
type Verdict uint8

// Verdicts, from the most to the least allowed.
const (
	// Send: the op goes in full.
	Send Verdict = iota
	// SummaryOnly: the priority is near its stop; its op sends its summary
	// (when it has not yet) and holds its data.
	SummaryOnly
	// Hold: the priority has reached its stop; the op waits for the next
	// period (or a larger allowance).
	Hold
)

func (v Verdict) String() string {
	return [...]string{"send", "summary_only", "hold"}[v]
}

// Options are what a budget takes besides its config.
type Options struct {
	// Path is the file the spend is kept in (JSON, replaced atomically).
	Path   string
	Logger hclog.Logger
	// Name is the endpoint's, for log lines.
	Name string
	// Class returns the link class bytes are sent on now; nil counts every
	// byte as Unknown.
	Class func() edgesync.LinkClass
}

// Budget accounts one endpoint's bytes against its allowance. Count is
// called for every datagram the endpoint's socket sends (Conn does it);
// Decide answers the sender. Safe for concurrent use.
type Budget struct {
	path  string
	log   hclog.Logger
	class func() edgesync.LinkClass
	// now is time.Now; tests in a synctest bubble see the bubble's clock.
	now func() time.Time

	// configAllowance is the allowance the config gave at Open.
	configAllowance int64

	mu  sync.Mutex
	cfg Config
	// The period in force and what was spent in it.
	start, end time.Time
	spent      int64
	byClass    map[edgesync.LinkClass]int64
	// byPriority is the op data the sender reports by priority; the rest
	// of spent is protocol overhead, probes and retransmissions.
	byPriority [edgesync.NumPriorities]int64
	// mark is the spend on disk: never below spent plus pending, the
	// bytes reserved for writes in progress.
	mark    int64
	pending int64
	// crossed[p] is set once the period's spend reached priority p's stop
	// (logged once); heldSince[p] is when the sender was first told to
	// hold p in this period.
	crossed          [edgesync.NumPriorities]bool
	economy          bool
	heldSince        [edgesync.NumPriorities]time.Time
	persistErrLogged bool
	// changed is closed and replaced when the period rolls over or the
	// config changes: held ops may go again.
	changed chan struct{}
}

// stateVersion is the version of the spend file.
const stateVersion = 1

// state is the spend file.
type state struct {
	Version     int              `json:"version"`
	PeriodStart time.Time        `json:"period_start"`
	Spent       int64            `json:"spent"`
	ByClass     map[string]int64 `json:"by_class"`
	ByPriority  map[string]int64 `json:"by_priority"`
	// Allowance is the allowance in force, kept so that one set at run
	// time (transport.budget.set) survives a restart; ConfigAllowance is
	// the config's at the time. A config whose allowance has changed
	// since wins.
	Allowance       int64 `json:"allowance"`
	ConfigAllowance int64 `json:"config_allowance"`
}

// Open loads the spend of cfg's current period from opts.Path (a spend of
// an earlier period is dropped) and returns the budget.
func Open(cfg Config, opts Options) (*Budget, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("budget: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Class == nil {
		opts.Class = func() edgesync.LinkClass { return edgesync.Unknown }
	}
	log := opts.Logger.Named("budget")
	if opts.Name != "" {
		log = log.With("endpoint", opts.Name)
	}
	b := &Budget{path: opts.Path, log: log, class: opts.Class, now: time.Now,
		cfg: cfg, configAllowance: cfg.Allowance, byClass: map[edgesync.LinkClass]int64{}, changed: make(chan struct{})}
	now := b.now()
	b.start, b.end = cfg.bounds(now)
	if opts.Path != "" {
		if err := b.load(); err != nil {
			return nil, err
		}
	}
	b.recheck(now, opts.Class())
	return b, nil
}

func (b *Budget) load() error {
	// A write cut short by a crash leaves its temporary file; the spend
	// file itself is always whole.
	_ = atomicfile.RemoveTemps(b.path)
	data, err := os.ReadFile(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("budget: read spend: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("budget: spend file %s is damaged (%v): move it away to start the period at zero", b.path, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("budget: spend file %s has version %d, want %d", b.path, st.Version, stateVersion)
	}
	if st.Allowance > 0 && st.Allowance != b.cfg.Allowance && st.ConfigAllowance == b.configAllowance {
		c := b.cfg
		c.Allowance = st.Allowance
		if c.Validate() == nil {
			b.cfg = c
		}
	}
	if !st.PeriodStart.Equal(b.start) {
		b.log.Info("a new budget period began while the agent was stopped", "last_spent", units.FormatBytes(st.Spent))
		return nil
	}
	b.spent, b.mark = st.Spent, st.Spent
	for name, n := range st.ByClass {
		if c, err := edgesync.ParseLinkClass(name); err == nil {
			b.byClass[c] = n
		}
	}
	for name, n := range st.ByPriority {
		if p, err := edgesync.ParsePriority(name); err == nil {
			b.byPriority[p] = n
		}
	}
	return nil
}

// Count records n bytes sent on the socket now (Reserve then Sent).
func (b *Budget) Count(n int) {
	b.Reserve(n)
	b.Sent(n, n)
}

// Reserve is called before n bytes are handed to the socket: it makes
// sure the spend on disk covers them (writing it PersistStep ahead when
// it does not), so that a crash after the write never forgets them.
func (b *Budget) Reserve(n int) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rollLocked(b.now())
	b.pending += int64(n)
	if b.spent+b.pending > b.mark && b.path != "" {
		b.persistLocked(b.spent + b.pending + b.cfg.step())
	}
}

// Sent records that n of the reserved bytes were sent (n may be less
// than reserved when the write failed).
func (b *Budget) Sent(reserved, n int) {
	class := b.class()
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.rollLocked(now)
	b.pending = max(0, b.pending-int64(reserved))
	if n <= 0 {
		return
	}
	b.spent += int64(n)
	b.byClass[class] += int64(n)
	if b.spent+b.pending > b.mark && b.path != "" {
		// Reserved in an earlier period: the reset zeroed the mark.
		b.persistLocked(b.spent + b.pending + b.cfg.step())
	}
	b.recheck(now, class)
}

// Attribute records that n of the bytes counted were op data of priority
// p (the sender's figure; the rest is overhead).
func (b *Budget) Attribute(p edgesync.Priority, n int64) {
	if !p.Valid() || n <= 0 {
		return
	}
	b.mu.Lock()
	b.byPriority[p] += n
	b.mu.Unlock()
}

// persistLocked writes the spend file with mark as the spend.
func (b *Budget) persistLocked(mark int64) {
	st := state{Version: stateVersion, PeriodStart: b.start, Spent: mark, Allowance: b.cfg.Allowance, ConfigAllowance: b.configAllowance,
		ByClass: map[string]int64{}, ByPriority: map[string]int64{}}
	for c, n := range b.byClass {
		st.ByClass[c.String()] = n
	}
	for _, p := range edgesync.Priorities() {
		if n := b.byPriority[p]; n > 0 {
			st.ByPriority[p.String()] = n
		}
	}
	data, err := json.Marshal(st)
	if err == nil {
		err = atomicfile.WriteFile(b.path, data, 0o600)
	}
	if err != nil {
		// Sending goes on: a disk that cannot take the spend must not
		// stop the link, but after a crash the bytes since the last good
		// write are forgotten.
		if !b.persistErrLogged {
			b.log.Error("budget spend not saved; after a crash it may count less than was sent", "error", err)
			b.persistErrLogged = true
		}
		return
	}
	b.persistErrLogged = false
	b.mark = mark
}

// rollLocked starts a new period when now has passed the current one.
func (b *Budget) rollLocked(now time.Time) {
	if now.Before(b.end) {
		return
	}
	last := b.spent
	b.start, b.end = b.cfg.bounds(now)
	b.resetLocked()
	b.log.Info("budget period renewed", "spent_last_period", units.FormatBytes(last), "period_start", b.start, "period_end", b.end)
}

// resetLocked zeroes the period's spend and writes it.
func (b *Budget) resetLocked() {
	b.spent, b.mark = 0, 0
	clear(b.byClass)
	b.byPriority = [edgesync.NumPriorities]int64{}
	b.crossed = [edgesync.NumPriorities]bool{}
	b.economy = false
	b.heldSince = [edgesync.NumPriorities]time.Time{}
	if b.path != "" {
		b.persistLocked(0)
	}
	close(b.changed)
	b.changed = make(chan struct{})
}

// limit is the spend at which priority p stops, over the whole
// allowance a and the reserve r.
func (c *Config) limit(p edgesync.Priority, a int64) int64 {
	if p.SendsAtOnce() {
		return a
	}
	r := c.Reserve
	if c.Allowance > 0 {
		r = int64(float64(c.Reserve) / float64(c.Allowance) * float64(a))
	}
	return int64(c.Shares[p] * float64(a-r))
}

// tightestLocked returns the spend and p's stop in the allowance nearest
// to p's stop: the whole one, or that of class if it has one. The class
// is read before b.mu is taken: reading it may lock the link monitor,
// which calls Left with its own lock held.
func (b *Budget) tightestLocked(p edgesync.Priority, class edgesync.LinkClass) (spent, limit int64) {
	spent, limit = b.spent, b.cfg.limit(p, b.cfg.Allowance)
	if a, ok := b.cfg.Classes[class]; ok {
		cs, cl := b.byClass[class], b.cfg.limit(p, a)
		if float64(cs)/float64(max(1, cl)) > float64(spent)/float64(max(1, limit)) {
			return cs, cl
		}
	}
	return spent, limit
}

// recheck logs each threshold the spend has just crossed, once per
// period.
func (b *Budget) recheck(now time.Time, class edgesync.LinkClass) {
	if !b.economy && b.cfg.Economy > 0 && float64(b.spent) >= b.cfg.Economy*float64(b.cfg.Allowance) {
		b.economy = true
		b.log.Info("budget running low: ops go in the cheapest encoding", "spent", units.FormatBytes(b.spent),
			"allowance", units.FormatBytes(b.cfg.Allowance), "period_end", b.end)
	}
	for _, p := range edgesync.Priorities() {
		if b.crossed[p] {
			continue
		}
		if spent, limit := b.tightestLocked(p, class); spent >= limit {
			b.crossed[p] = true
			b.log.Warn("budget threshold reached: priority stops until the period ends", "priority", p.String(),
				"spent", units.FormatBytes(spent), "threshold", units.FormatBytes(limit), "period_end", b.end)
		}
	}
}

// Decide says what an op of priority p may do now. Hold and SummaryOnly
// mark p as held back from now (status shows since when).
func (b *Budget) Decide(p edgesync.Priority) Verdict {
	class := b.class()
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.rollLocked(now)
	spent, limit := b.tightestLocked(p, class)
	v := Send
	switch {
	case spent >= limit:
		v = Hold
	case !p.SendsAtOnce() && float64(spent) >= float64(limit)-b.cfg.SummaryBand*float64(b.cfg.Allowance):
		v = SummaryOnly
	}
	if v == Send {
		b.heldSince[p] = time.Time{}
	} else if b.heldSince[p].IsZero() {
		b.heldSince[p] = now
	}
	return v
}

// Economy reports whether ops should go in the cheapest encoding: the
// spend has passed Config.Economy.
func (b *Budget) Economy() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rollLocked(b.now())
	return b.economy
}

// Left returns the share of the allowance not yet spent, 0..1.
func (b *Budget) Left() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rollLocked(b.now())
	return max(0, 1-float64(b.spent)/float64(b.cfg.Allowance))
}

// Changed returns a channel closed when the period rolls over, the budget
// is reset or its config changes: what was held may go again.
func (b *Budget) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// Serve renews the period on time (logging it and waking held senders)
// until ctx ends.
func (b *Budget) Serve(ctx context.Context) {
	for {
		b.mu.Lock()
		wait := b.end.Sub(b.now())
		b.mu.Unlock()
		t := time.NewTimer(max(0, wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		b.mu.Lock()
		b.rollLocked(b.now())
		b.mu.Unlock()
	}
}

// Close writes the exact spend, so that a clean stop counts nothing
// ahead. Counting after Close still works but is not saved.
func (b *Budget) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path == "" {
		return nil
	}
	b.rollLocked(b.now())
	mark := b.mark
	b.persistLocked(b.spent)
	if b.mark != b.spent {
		b.mark = mark
		return fmt.Errorf("budget: spend not saved to %s", b.path)
	}
	return nil
}

// Reset zeroes the current period's spend (transport.budget.reset): for
// an operator whose plan was topped up.
func (b *Budget) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rollLocked(b.now())
	b.log.Info("budget reset by the operator", "spent", units.FormatBytes(b.spent))
	b.resetLocked()
}

// SetAllowance changes the allowance from now on (transport.budget.set);
// the reserve keeps its share of it. It is saved with the spend.
func (b *Budget) SetAllowance(n int64) error {
	class := b.class()
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.cfg
	c.Reserve = int64(float64(c.Reserve) / float64(c.Allowance) * float64(n))
	c.Allowance = n
	if err := c.Validate(); err != nil {
		return err
	}
	b.log.Info("budget allowance changed", "from", units.FormatBytes(b.cfg.Allowance), "to", units.FormatBytes(n))
	b.cfg = c
	b.crossed = [edgesync.NumPriorities]bool{}
	b.economy = false
	b.heldSince = [edgesync.NumPriorities]time.Time{}
	b.recheck(b.now(), class)
	if b.path != "" {
		b.persistLocked(max(b.mark, b.spent))
	}
	close(b.changed)
	b.changed = make(chan struct{})
	return nil
}

// Room returns the bytes priority p may still send before it stops
// (0 once it has).
func (b *Budget) Room(p edgesync.Priority) int64 {
	class := b.class()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rollLocked(b.now())
	spent, limit := b.tightestLocked(p, class)
	return max(0, limit-spent)
}

// ProbeCapBps is the capacity, in bit/s, the link monitor's probe budget
// should be a share of: the allowance's average rate over the period,
// so that probes spend their share (2 % by default) of the allowance
// rather than of the link; past Economy it shrinks with the share of the
// allowance left (to 5 % at the least). It takes no lock but the
// budget's.
func (b *Budget) ProbeCapBps() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rollLocked(b.now())
	rate := float64(b.cfg.Allowance) * 8 / b.end.Sub(b.start).Seconds()
	if b.economy {
		rate *= max(0.05, 1-float64(b.spent)/float64(b.cfg.Allowance))
	}
	return rate
}
