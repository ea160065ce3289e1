package linkmon

import (
	"fmt"
	"slices"
	"strings"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// ClassChange is a LinkClassChanged event: the class moved from Old to New
// because of Trigger, for the human-readable Reason.
type ClassChange struct {
	Old     edgesync.LinkClass `json:"old"`
	New     edgesync.LinkClass `json:"new"`
	Trigger Measurement        `json:"trigger"`
	// Reason says which figure crossed which threshold, e.g.
	// "median 0.7 Mbit/s < 1 Mbit/s for 3 samples".
	Reason string `json:"reason"`
}

// String renders the change for logs.
func (c ClassChange) String() string {
	return fmt.Sprintf("%s -> %s: %s", c.Old, c.New, c.Reason)
}

// Status is the classifier's current view of the link.
type Status struct {
	Class edgesync.LinkClass `json:"class"`
	// Since is when Class was entered (the first sample's time for Unknown).
	Since time.Time `json:"since"`
	// Median holds the figures the class was judged on: median bandwidth,
	// RTT and jitter over the recent window, mean loss over the loss window.
	Median Measurement `json:"median"`
	// Samples is the number of answered samples within the window.
	Samples int `json:"samples"`
	// Missed is the number of consecutive stale samples up to now.
	Missed int `json:"missed"`
	// LastChange is the most recent class change, nil before the first.
	LastChange *ClassChange `json:"last_change,omitempty"`
	// DownSince is, while the link counts as out (more than MaxMissed
	// consecutive stale samples spanning MinOutage), the time of the last
	// answered sample; nil while the link answers (reach.go).
	DownSince *time.Time `json:"down_since,omitempty"`
}

// maxKeptSamples bounds the classifier's memory whatever the sample rate.
const maxKeptSamples = 4096

// Classifier turns a stream of measurements into a link class with
// hysteresis. It is pure and deterministic: it reads no clock (time comes
// from Measurement.At) and starts no goroutine. It is not safe for
// concurrent use; the monitor owns one per endpoint.
//
// # Rules
//
// Each figure is placed on its own axis. Bandwidth: fiber above
// FiberMinBps, broadband from BroadbandMinBps, mobile from MobileMinBps,
// satellite below. RTT: fiber below FiberMaxRTT, broadband below
// BroadbandMaxRTT, mobile below MobileMaxRTT, satellite above
// SatelliteMinRTT. The link's class is the worse of the two. That is the
// "nearest class by the worse of its two figures" rule of
// docs/design.md#link-classes, and it settles every measurement that fits
// no row of the table:
//
//   - 200 Mbit/s at 30 ms: bandwidth says fiber, RTT says broadband → broadband.
//   - 5 Mbit/s at 5 ms: → mobile. 0.5 Mbit/s at 20 ms: → satellite.
//   - An RTT in the gap between mobile's 200 ms and satellite's 500 ms goes
//     to the nearer row, nearness as a ratio: the split is the geometric
//     mean √(200·500) ≈ 316 ms. So 50 Mbit/s at 300 ms is mobile (300 ms
//     is nearer 200 than 500, and mobile is worse than broadband), and 50
//     Mbit/s at 400 ms is satellite.
//
// Bandwidth is the median of the last MedianSamples exact samples within
// Window. Lower-bound samples (an app-limited sender's delivery rate) can
// only raise it: the figure is max(median exact, median lower bound). With
// no exact sample the bandwidth does not constrain the class and RTT alone
// decides (the monitor probes bandwidth at start, so this lasts one probe).
// RTT is the median of the last MedianSamples samples within Window.
//
// # Hysteresis
//
// While the class is known, each threshold is moved away from the current
// class by h = Hysteresis: leaving a class downwards needs a bandwidth
// below threshold·(1−h) or an RTT above threshold·(1+h); leaving it
// upwards needs a bandwidth above threshold·(1+h) and an RTT below
// threshold·(1−h). The class then changes only when the same new class
// has come out for MinSamples consecutive samples. A figure oscillating
// ±15 % around a threshold therefore never changes the class. A figure
// settled inside the margin does, once the plain thresholds have given
// the same other class for a whole Window (settled).
//
// # Unknown and satellite at once
//
// The class is Unknown until MinSamples answered samples are in the
// window; then it is the class of their medians, with no margin (there is
// nothing to be sticky about). The exception: while Unknown, a median RTT
// above SatelliteMinRTT classifies as satellite from the first sample,
// because at 600 ms a sender must not wait 3 samples with the wrong
// parameters, and an RTT that high has no other explanation.
//
// # Intermittent
//
// A drop to intermittent needs no margin and no consecutive samples:
//   - more than MaxMissed consecutive stale samples spanning at least
//     MinOutage since the last answered sample (the link is gone); the
//     figure history is then cleared so the class after recovery is judged
//     on the link as it comes back; or
//   - mean loss above IntermittentLoss over LossWindow, once the loss
//     window holds samples spanning at least half of it. A Starlink
//     handover (up to 50 % loss for about 1 s every 15 s) averages to a few
//     percent over 20 s and does not count.
//
// Recovery needs MinSamples consecutive answered samples giving the same
// class, and, if loss put the link there, a mean loss below
// IntermittentLoss·(1−h).
type Classifier struct {
	cfg ClassifierConfig

	samples []Measurement // answered samples, oldest first, within keep()
	class   edgesync.LinkClass
	since   time.Time
	last    *ClassChange

	pending      edgesync.LinkClass
	pendingCount int

	// plain is the class of the figures by the plain thresholds (no
	// margin) since plainSince, over plainCount answered samples in a
	// row: a class other than the current one held for a Window is taken
	// (settled).
	plain      edgesync.LinkClass
	plainSince time.Time
	plainCount int

	missed    int
	lastFresh time.Time // last answered sample, or first sample seen
	lastAt    time.Time
	lossy     bool // intermittent because of loss, not an outage
}

// NewClassifier returns a classifier in class Unknown.
func NewClassifier(cfg ClassifierConfig) (*Classifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new classifier: %w", err)
	}
	return newClassifier(cfg), nil
}

// newClassifier returns a classifier for a cfg that has been validated
// (the monitor's, checked by NewMonitor and Restart).
func newClassifier(cfg ClassifierConfig) *Classifier { return &Classifier{cfg: cfg} }

// Config returns the classifier's configuration.
func (c *Classifier) Config() ClassifierConfig { return c.cfg }

// Restore starts the classifier from a class known earlier (the status kept
// across a restart): it is treated as the current class, with its
// hysteresis, until the measurements move it. Figures are not restored.
func (c *Classifier) Restore(class edgesync.LinkClass, since time.Time) {
	if !class.Valid() {
		return
	}
	c.class, c.since = class, since
}

// figures are the classifier's view of the recent window.
type figures struct {
	n        int // answered samples within Window
	bw       float64
	bwKnown  bool
	bwLower  bool // bw comes from lower bounds only
	bwN      int  // samples bw is the median of
	rtt      time.Duration
	rttKnown bool
	rttN     int // samples rtt is the median of
	jitter   time.Duration
	loss     float64
	lossSpan time.Duration
}

// Observe feeds one measurement and returns the resulting status and, when
// the class changed, the change. A measurement that fails Validate is
// ignored. Measurements should come in time order; one stamped before its
// predecessor is treated as taken at the predecessor's time.
func (c *Classifier) Observe(m Measurement) (Status, *ClassChange) {
	if m.Validate() != nil {
		return c.status(c.compute(c.lastAt), c.lastAt), nil
	}
	if m.At.Before(c.lastAt) {
		m.At = c.lastAt
	}
	c.lastAt = m.At
	if c.since.IsZero() {
		c.since = m.At
	}
	if c.lastFresh.IsZero() {
		c.lastFresh = m.At
	}
	if m.Stale {
		return c.observeStale(m)
	}
	c.missed = 0
	c.lastFresh = m.At
	c.samples = append(c.samples, m)
	c.prune(m.At)

	f := c.compute(m.At)
	cfg := &c.cfg
	h := cfg.Hysteresis

	if f.n < cfg.MinSamples {
		if c.class == edgesync.Unknown && f.rttKnown && f.rtt > cfg.SatelliteMinRTT {
			reason := fmt.Sprintf("median RTT %s > %s from the first %d sample(s)", fmtDur(f.rtt), fmtDur(cfg.SatelliteMinRTT), f.n)
			return c.change(edgesync.Satellite, m, f, reason)
		}
		return c.status(f, m.At), nil
	}

	// Loss: a drop needs no margin; staying (or recovering) uses the margin.
	lossCovered := f.lossSpan >= cfg.LossWindow/2
	if c.class != edgesync.Intermittent && lossCovered && f.loss > cfg.IntermittentLoss {
		reason := fmt.Sprintf("mean loss %.1f%% > %.0f%% over %s", f.loss*100, cfg.IntermittentLoss*100, f.lossSpan.Round(time.Second))
		st, ch := c.change(edgesync.Intermittent, m, f, reason)
		c.lossy = true
		return st, ch
	}
	if c.class == edgesync.Intermittent && c.lossy && f.loss >= cfg.IntermittentLoss*(1-h) {
		c.resetPending()
		return c.status(f, m.At), nil
	}

	if !f.bwKnown && !f.rttKnown {
		return c.status(f, m.At), nil
	}
	cand := c.classify(f, c.class)

	switch {
	case c.class == edgesync.Unknown:
		reason := fmt.Sprintf("%s over the first %d samples", describe(f), f.n)
		return c.change(cand, m, f, reason)
	case c.class == edgesync.Intermittent && !c.lossy:
		// Back from an outage: the history was cleared at the cut, so these
		// MinSamples answered samples are all consecutive and post-outage.
		reason := fmt.Sprintf("%s for %d samples", c.explain(c.class, cand, f), f.n)
		return c.change(cand, m, f, reason)
	}
	if cand == c.class {
		c.resetPending()
		if st, ch, ok := c.settled(f, m); ok {
			return st, ch
		}
		return c.status(f, m.At), nil
	}
	c.plain = edgesync.Unknown // the margin's own rule is at work: settled starts over
	if cand == c.pending {
		c.pendingCount++
	} else {
		c.pending, c.pendingCount = cand, 1
	}
	if c.pendingCount < cfg.MinSamples {
		return c.status(f, m.At), nil
	}
	reason := fmt.Sprintf("%s for %d samples", c.explain(c.class, cand, f), c.pendingCount)
	return c.change(cand, m, f, reason)
}

// settled changes to the class the plain thresholds give once it has held
// for a whole Window and at least 3 × MinSamples answered samples in a
// row, though the figures are still inside the current class's margin:
// the margin keeps a class from following a figure that wavers around a
// threshold, not from ever following a figure that has settled inside the
// margin (50 Mbit/s at 42 ms stays broadband's, once a few seconds of
// queueing made it mobile, docs/linkmon.md "Classes"). A figure
// that wavers around the threshold changes its plain class within seconds
// and never holds one that long.
func (c *Classifier) settled(f figures, m Measurement) (Status, *ClassChange, bool) {
	plain := c.classify(f, edgesync.Unknown)
	if plain != c.plain {
		c.plain, c.plainSince, c.plainCount = plain, m.At, 0
	}
	c.plainCount++
	held := m.At.Sub(c.plainSince)
	if plain == c.class || held < c.cfg.Window || c.plainCount < 3*c.cfg.MinSamples {
		return Status{}, nil, false
	}
	reason := fmt.Sprintf("%s, held for %s inside the margin of the thresholds", c.explain(c.class, plain, f), fmtDur(held))
	st, ch := c.change(plain, m, f, reason)
	return st, ch, true
}

func (c *Classifier) observeStale(m Measurement) (Status, *ClassChange) {
	c.missed++
	c.prune(m.At)
	f := c.compute(m.At)
	gone := m.At.Sub(c.lastFresh)
	if c.missed <= c.cfg.MaxMissed || gone < c.cfg.MinOutage {
		return c.status(f, m.At), nil
	}
	// The link is gone. Judge it as it comes back, not on its figures
	// before the cut.
	c.samples = c.samples[:0]
	c.lossy = false
	f = c.compute(m.At)
	// Nothing is answered: that is 100 % loss for as long as it lasts,
	// not the figure from before the cut. It is shown, not kept: the
	// samples after the link's return judge it afresh.
	f.loss, f.lossSpan = 1, gone
	if c.class == edgesync.Intermittent {
		return c.status(f, m.At), nil
	}
	reason := fmt.Sprintf("%d consecutive samples unanswered (> %d) for %s", c.missed, c.cfg.MaxMissed, fmtDur(gone))
	return c.change(edgesync.Intermittent, m, f, reason)
}

// Reconnected records that a new connection just crossed the link at
// (a completed handshake is an answer): samples missed before it no
// longer count toward an outage. The class is left as it is; it changes
// on the samples that follow.
func (c *Classifier) Reconnected(at time.Time) {
	c.missed = 0
	if at.After(c.lastFresh) {
		c.lastFresh = at
	}
}

// Rebase replaces the bandwidth of the answered samples that feed the
// bandwidth median with bw: a change of capacity confirmed by two
// measurements (a check train and the train that confirmed it) is no
// spike for the median to ride out, and the class then follows within
// MinSamples samples rather than after the median has turned. Lower
// bounds are left as they are.
func (c *Classifier) Rebase(bw float64) {
	if bw <= 0 {
		return
	}
	for i := len(c.samples) - 1; i >= 0; i-- {
		if s := &c.samples[i]; s.BandwidthBps > 0 && !s.BandwidthLowerBound {
			s.BandwidthBps = bw
		}
	}
}

func (c *Classifier) resetPending() { c.pending, c.pendingCount = edgesync.Unknown, 0 }

func (c *Classifier) change(to edgesync.LinkClass, m Measurement, f figures, reason string) (Status, *ClassChange) {
	c.resetPending()
	if to == c.class {
		return c.status(f, m.At), nil
	}
	ch := &ClassChange{Old: c.class, New: to, Trigger: m, Reason: reason}
	c.class, c.since, c.last = to, m.At, ch
	c.plain = edgesync.Unknown
	c.lossy = false
	return c.status(f, m.At), ch
}

func (c *Classifier) status(f figures, at time.Time) Status {
	med := Measurement{
		BandwidthBps:        f.bw,
		BandwidthLowerBound: f.bwLower,
		RTT:                 f.rtt,
		Jitter:              f.jitter,
		Loss:                f.loss,
		At:                  at,
		Stale:               c.missed > 0,
	}
	if len(c.samples) > 0 {
		med.Method = c.samples[len(c.samples)-1].Method
	}
	st := Status{Class: c.class, Since: c.since, Median: med, Samples: f.n, Missed: c.missed, DownSince: c.downSince()}
	if c.last != nil {
		lc := *c.last // the caller may keep or change it
		st.LastChange = &lc
	}
	return st
}

// prune drops samples too old for either window and bounds the history.
func (c *Classifier) prune(now time.Time) {
	keep := max(c.cfg.Window, c.cfg.LossWindow)
	i := 0
	for i < len(c.samples) && now.Sub(c.samples[i].At) > keep {
		i++
	}
	if over := len(c.samples) - i - maxKeptSamples; over > 0 {
		i += over
	}
	if i > 0 {
		c.samples = append(c.samples[:0], c.samples[i:]...)
	}
}

// compute derives the figures at time now from the kept samples.
func (c *Classifier) compute(now time.Time) figures {
	var f figures
	var bws, lbs, loss []float64
	var rtts, jits []time.Duration
	k := c.cfg.MedianSamples
	var lossOldest time.Time
	for i := len(c.samples) - 1; i >= 0; i-- {
		s := c.samples[i]
		age := now.Sub(s.At)
		if age <= c.cfg.LossWindow {
			loss = append(loss, s.Loss)
			lossOldest = s.At
		}
		if age > c.cfg.Window {
			continue
		}
		f.n++
		if s.BandwidthBps > 0 {
			if s.BandwidthLowerBound {
				if len(lbs) < k {
					lbs = append(lbs, s.BandwidthBps)
				}
			} else if len(bws) < k {
				bws = append(bws, s.BandwidthBps)
			}
		}
		if s.RTT > 0 && len(rtts) < k {
			rtts = append(rtts, s.RTT)
			jits = append(jits, s.Jitter)
		}
	}
	if len(bws) > 0 {
		f.bw, f.bwKnown, f.bwN = median(bws), true, len(bws)
		if len(lbs) > 0 && median(lbs) > f.bw {
			f.bw, f.bwN = median(lbs), len(lbs)
		}
	} else if len(lbs) > 0 {
		// Reported, but a lower bound alone does not classify.
		f.bw, f.bwLower, f.bwN = median(lbs), true, len(lbs)
	}
	if len(rtts) > 0 {
		f.rtt, f.jitter, f.rttKnown, f.rttN = median(rtts), median(jits), true, len(rtts)
	}
	if len(loss) > 0 {
		var sum float64
		for _, l := range loss {
			sum += l
		}
		f.loss = sum / float64(len(loss))
		f.lossSpan = now.Sub(lossOldest)
	}
	return f
}

func median[T float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// rank orders the four measured classes, fiber (0) to satellite (3).
func rank(c edgesync.LinkClass) int {
	switch c {
	case edgesync.Fiber:
		return 0
	case edgesync.Broadband:
		return 1
	case edgesync.Mobile:
		return 2
	case edgesync.Satellite:
		return 3
	}
	return -1
}

var byRank = [4]edgesync.LinkClass{edgesync.Fiber, edgesync.Broadband, edgesync.Mobile, edgesync.Satellite}

// bwBounds are the bandwidth thresholds between ranks r and r+1.
func (c *Classifier) bwBounds() [3]float64 {
	return [3]float64{c.cfg.FiberMinBps, c.cfg.BroadbandMinBps, c.cfg.MobileMinBps}
}

// rttBounds are the RTT thresholds between ranks r and r+1.
func (c *Classifier) rttBounds() [3]time.Duration {
	return [3]time.Duration{c.cfg.FiberMaxRTT, c.cfg.BroadbandMaxRTT, c.cfg.mobileSatelliteSplit()}
}

// shift says how boundary r moves for the current class: +1 when the
// current class is on its better side (the boundary moves to hold it
// there), −1 on its worse side, 0 without a current measured class.
func shift(cur edgesync.LinkClass, r int) float64 {
	cr := rank(cur)
	switch {
	case cr < 0:
		return 0
	case cr <= r:
		return 1
	default:
		return -1
	}
}

// bwRank places a bandwidth on its axis relative to the current class.
func (c *Classifier) bwRank(bw float64, cur edgesync.LinkClass) int {
	h := c.cfg.Hysteresis
	for r, t := range c.bwBounds() {
		eff := t * (1 - shift(cur, r)*h)
		if r == 0 && bw > eff || r > 0 && bw >= eff {
			return r
		}
	}
	return 3
}

// rttRank places an RTT on its axis relative to the current class.
func (c *Classifier) rttRank(rtt time.Duration, cur edgesync.LinkClass) int {
	h := c.cfg.Hysteresis
	for r, t := range c.rttBounds() {
		eff := float64(t) * (1 + shift(cur, r)*h)
		if r == 2 && float64(rtt) <= eff || r < 2 && float64(rtt) < eff {
			return r
		}
	}
	return 3
}

// classify returns the worse of the two figures' classes, with thresholds
// moved by the hysteresis margin around cur. Recovery from Intermittent
// uses the plain thresholds.
func (c *Classifier) classify(f figures, cur edgesync.LinkClass) edgesync.LinkClass {
	r := 0
	if f.bwKnown {
		r = max(r, c.bwRank(f.bw, cur))
	}
	if f.rttKnown {
		r = max(r, c.rttRank(f.rtt, cur))
	}
	return byRank[r]
}

// describe renders the figures plainly.
func describe(f figures) string {
	var parts []string
	if f.bwKnown {
		parts = append(parts, "median "+FormatBps(f.bw))
	}
	if f.rttKnown {
		parts = append(parts, "RTT "+fmtDur(f.rtt))
	}
	return strings.Join(parts, ", ")
}

// ofLast says how many samples a median is of, for a reason: the median
// judges the class, so a reason beside the last sample (which may read
// otherwise) must say it is not that sample (docs/linkmon.md).
func ofLast(n int) string {
	if n == 1 {
		return "of the last sample"
	}
	return fmt.Sprintf("of the last %d samples", n)
}

// explain names the figures that moved the class from old to to, with the
// plain threshold each one crossed.
func (c *Classifier) explain(old, to edgesync.LinkClass, f figures) string {
	bb, rb := c.bwBounds(), c.rttBounds()
	tr := rank(to)
	var parts []string
	if rank(old) >= 0 && tr > rank(old) {
		// Downwards: the figure(s) that now sit in the worse class.
		if f.bwKnown && c.bwRank(f.bw, old) >= tr {
			parts = append(parts, fmt.Sprintf("median %s %s < %s", FormatBps(f.bw), ofLast(f.bwN), FormatBps(bb[tr-1])))
		}
		if f.rttKnown && c.rttRank(f.rtt, old) >= tr {
			s := fmt.Sprintf("median RTT %s %s > %s", fmtDur(f.rtt), ofLast(f.rttN), fmtDur(rb[tr-1]))
			if tr == 3 {
				if f.rtt > c.cfg.SatelliteMinRTT {
					s = fmt.Sprintf("median RTT %s %s > %s", fmtDur(f.rtt), ofLast(f.rttN), fmtDur(c.cfg.SatelliteMinRTT))
				} else {
					s += fmt.Sprintf(" (nearer satellite's %s than mobile's %s)", fmtDur(c.cfg.SatelliteMinRTT), fmtDur(c.cfg.MobileMaxRTT))
				}
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, " and ")
	}
	// Upwards (or recovering): both figures now qualify for the class.
	if f.bwKnown {
		switch {
		case tr == 0:
			parts = append(parts, fmt.Sprintf("median %s %s > %s", FormatBps(f.bw), ofLast(f.bwN), FormatBps(bb[0])))
		case tr < 3:
			parts = append(parts, fmt.Sprintf("median %s %s >= %s", FormatBps(f.bw), ofLast(f.bwN), FormatBps(bb[tr])))
		default:
			parts = append(parts, fmt.Sprintf("median %s %s", FormatBps(f.bw), ofLast(f.bwN)))
		}
	}
	if f.rttKnown {
		if tr < 3 {
			parts = append(parts, fmt.Sprintf("median RTT %s %s < %s", fmtDur(f.rtt), ofLast(f.rttN), fmtDur(rb[tr])))
		} else {
			parts = append(parts, fmt.Sprintf("median RTT %s %s", fmtDur(f.rtt), ofLast(f.rttN)))
		}
	}
	if old == edgesync.Intermittent {
		if c.lossy {
			h := c.cfg.Hysteresis
			return fmt.Sprintf("mean loss %.1f%% < %.0f%%, %s", f.loss*100, c.cfg.IntermittentLoss*(1-h)*100, strings.Join(parts, " and "))
		}
		return "answered again: " + strings.Join(parts, " and ")
	}
	return strings.Join(parts, " and ")
}
