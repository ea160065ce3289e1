package linkmon

import (
	"sync/atomic"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// Idle links (docs/linkmon.md, "Idle links"). A link that carries no
// traffic does not need sampling at the busy rate: when nothing was sent
// on it for IdleAfter (no bytes acknowledged to the delivery meter, no
// Busy call), the sampler pings every IdleSampleInterval instead of every
// SampleInterval, probes bandwidth every IdleProbeInterval instead of
// every ProbeInterval, and sends a check train (a few packets that see a
// drop of bandwidth alone) at most every IdleSampleInterval. Busy (the agent calls
// it when an op is enqueued or sent) and acknowledged bytes end idleness:
// Busy pings at once and the busy schedule resumes, with a bandwidth
// probe when the last is older than ProbeInterval, once the op Busy
// announced has gone (wokenByBusy, starting). A new connection starts
// busy.
//
// A sample that shows a change ends idleness as well: an RTT off the
// median by more than the RTT's own recent jitter allows (idleJump), or a
// loss jump, that a second ping sent at once confirms and that pings at
// the busy rate, with no train, then verify (idlePong); or an idle ping
// unanswered at its deadline (idleExpiry: a timer, not the next idle
// tick), which pings at the busy rate verify the same way (staleSeen).
// So a change of an idle link's RTT, loss or reachability shows in the
// next idle ping (at most IdleSampleInterval, 5 s, later) and is then
// judged at the busy rate, within the busy bounds (an outage: 2.3-7.5 s
// in all), while pongs a loaded machine delays at random are the RTT's
// jitter, and wake neither full-rate sampling nor a probe train. A drop
// of bandwidth alone is seen by the next idle check train (at most
// IdleSampleInterval later, then confirmed at once); the capacity is
// rebased and pings at the busy rate, no train, carry it into the class
// (idleDrop). A rise is seen by the next idle probe or, sooner, by the
// first traffic, whose delivery rate measures the link within about two
// seconds. After any class change the link is pinged at the busy rate
// for IdleAfter (classMoved): the next change comes within the busy
// bounds.

// idleVerify is a ping-only wake being verified (verifyPong).
type idleVerify struct {
	left  int // pongs still to take; 0: none being verified
	rtts  []time.Duration
	ref   time.Duration // the median RTT before the wake
	jump  time.Duration // the change their median must show
	ticks int
	stale bool // of a stale sample: the loss it adds is the sample judged
}

// idleState is the monitor's side of it: when Busy was last called, and
// whether the sampler is on the idle schedule (so that Busy only wakes it
// then).
type idleState struct {
	busyAt atomic.Int64 // UnixNano of the last Busy
	idle   atomic.Bool
	wake   chan struct{}
}

// Busy tells the monitor that traffic is about to go out on the link: an
// idle link is sampled at the busy rate again from now on. Cheap; safe
// for concurrent use.
func (m *Monitor) Busy() {
	m.idleSt.busyAt.Store(time.Now().UnixNano())
	if m.idleSt.idle.Load() {
		m.signal(m.idleSt.wake)
	}
}

// idleScheduled reports whether the config samples an idle link at all
// differently from a busy one.
func (c *Config) idleScheduled() bool {
	return c.IdleSampleInterval > c.SampleInterval || c.IdleProbeInterval > c.ProbeInterval
}

// sampleEvery is the sampler's tick period now: the idle interval while
// idle, but the busy one while a verification runs or for IdleAfter after
// a class change (classMoved).
func (s *sampler) sampleEvery() time.Duration {
	if s.idle && s.verify.left == 0 && !time.Now().Before(s.alertEnd) {
		return s.idleEvery()
	}
	return s.m.cfg.SampleInterval
}

// idleEvery is the idle link's sample interval: IdleSampleInterval, at
// most Window/MinSamples and at least SampleInterval.
func (s *sampler) idleEvery() time.Duration {
	c := &s.m.cfg
	fit := c.Classifier.Window / time.Duration(max(1, c.Classifier.MinSamples))
	return max(min(c.IdleSampleInterval, fit), c.SampleInterval)
}

// checkIdle updates s.idle at wall from the delivery meter and the last
// Busy call, and reports whether it changed.
func (s *sampler) checkIdle(wall time.Time) bool {
	cfg := &s.m.cfg
	if !cfg.idleScheduled() {
		return false
	}
	s.verifyTick(wall)
	if acked := s.m.meter.ackedTotal(); acked != s.ackedSeen {
		s.ackedSeen, s.activeAt = acked, wall
	}
	if (s.afterFill || s.fillProbe) && cfg.Active && s.prober != nil {
		// Busy until the probe after a transfer has run and its figure
		// reached the status (maybeProbe, probed).
		s.activeAt = wall
	}
	busyAt := s.m.idleSt.busyAt.Load()
	last := max(s.activeAt.UnixNano(), busyAt)
	idle := wall.UnixNano()-last >= int64(cfg.IdleAfter)
	if idle == s.idle {
		return false
	}
	if !idle && busyAt >= s.activeAt.UnixNano() {
		// The tick saw Busy before its wake signal.
		s.wokenByBusy(time.Unix(0, busyAt))
	}
	s.idle, s.verify.left = idle, 0 // traffic ends a verification too
	s.m.idleSt.idle.Store(idle)
	s.m.log.Debug("link sampling", "idle", idle, "every", s.sampleEvery())
	return true
}

// busyNow ends idleness at once (Busy was called, or a connection was
// attached).
func (s *sampler) busyNow(wall time.Time) {
	s.activeAt = wall
	s.verify.left = 0
	if s.idle {
		s.idle = false
		s.m.idleSt.idle.Store(false)
		s.m.log.Debug("link sampling", "idle", false, "every", s.sampleEvery())
	}
}

// wokenByBusy notes that Busy, at wall, ends the link's idleness (its
// op goes out now): no probe or check train goes before that op's data
// has gone (starting). A wake for a change the samples showed
// (changeSeen) keeps no such hold.
func (s *sampler) wokenByBusy(wall time.Time) {
	if s.idle {
		s.busyWake = wall
	}
}

// changeSeen takes a sample that shows a change (an RTT or loss jump, a
// stale sample) as the link's activity: an idle link goes back to the
// busy schedule at once, so that the change is confirmed, or dismissed,
// at the busy rate.
func (s *sampler) changeSeen(wall time.Time) {
	if s.m.cfg.idleScheduled() {
		if s.idle {
			s.m.log.Debug("idle link changed; sampling at the busy rate")
			s.m.mu.Lock()
			s.m.stats.IdleWakes++
			s.m.mu.Unlock()
		}
		s.busyWake = time.Time{} // a change is measured at once (confirmed)
		s.busyNow(wall)
	}
}

// idleNoise is how many times the RTT's own recent jitter (the mean
// difference of successive RTTs, as Measurement.Jitter) an idle ping's
// RTT must be off the median to show a change: as TCP's retransmission
// timeout sits 4 mean deviations above the smoothed RTT, a pong delayed
// by the link's (or a loaded machine's) usual jitter is not a change.
const idleNoise = 4

// minIdleJump is the smallest RTT change an idle ping takes as one.
const minIdleJump = 5 * time.Millisecond

// verifyPongs is how many pongs, pinged at the busy rate, a ping-only
// wake takes before it is confirmed (their median is still off) or
// dismissed (the link goes on idle, with no probe train sent).
const verifyPongs = 4

// idleJump is the RTT change an idle ping must show against the median
// med: the greatest of minIdleJump, rttJump × med and idleNoise × the
// jitter of the recent RTTs but the newest skip (the ones judged, which
// would hide a change behind itself).
func (s *sampler) idleJump(med time.Duration, skip int) time.Duration {
	var jit time.Duration
	if n := len(s.rtts) - skip; n >= 2 {
		for i := 1; i < n; i++ {
			jit += absDur(s.rtts[i] - s.rtts[i-1])
		}
		jit /= time.Duration(n - 1)
	}
	return max(minIdleJump, time.Duration(rttJump*float64(med)), idleNoise*jit)
}

// idlePong judges an idle ping's answer. An RTT off the median the class
// was judged on by more than idleJump, or lossJump (the recent loss rose
// by 5 points since the last probe), is a change once a second ping,
// sent at once, shows it too; then the link is pinged at the busy rate,
// with no probe or check train, for verifyPongs pongs, and only if their
// median is still off (or a sample goes stale) does the link go back to
// the busy schedule. One ping delayed by a busy machine, or two, is not
// a change; and the train a busy link's probe sends, the dearest thing
// the monitor does, waits until the change is certain.
func (s *sampler) idlePong(rtt time.Duration, lossJump bool) {
	if !s.idle {
		s.idleOdd = false
		return
	}
	if s.verify.left > 0 {
		s.verifyPong(rtt, lossJump)
		return
	}
	s.m.mu.Lock()
	med := s.m.status.Median.RTT
	s.m.mu.Unlock()
	skip := 1
	if s.idleOdd {
		skip = 2 // the first deviant pong, too
	}
	deviant := lossJump || (med > 0 && absDur(rtt-med) > s.idleJump(med, skip))
	switch {
	case deviant && s.idleOdd:
		s.idleOdd = false
		s.verify = idleVerify{left: verifyPongs, rtts: s.verify.rtts[:0], ref: med, jump: s.idleJump(med, skip)}
		s.m.log.Debug("idle link may have changed; verifying at the busy rate", "rtt", rtt, "median", med, "loss_jump", lossJump)
	case deviant:
		s.idleOdd = true
		s.pingNow()
	default:
		s.idleOdd = false
	}
}

// verifyPong takes one pong of a ping-only wake's verification.
func (s *sampler) verifyPong(rtt time.Duration, lossJump bool) {
	v := &s.verify
	v.rtts = append(v.rtts, rtt)
	v.left--
	med := median(v.rtts)
	off := v.ref > 0 && absDur(med-v.ref) > v.jump
	switch {
	case lossJump && !v.stale || (v.left == 0 && off):
		s.confirmed(time.Now())
	case v.left == 0:
		s.m.mu.Lock()
		s.m.stats.IdleDismissed++
		s.m.mu.Unlock()
		s.m.log.Debug("idle link unchanged; sampling stays idle", "median", med, "before", v.ref)
	}
}

// verifyTick bounds a verification: pongs that do not come (lost, or
// later than 2 × verifyPongs ticks) are a change.
func (s *sampler) verifyTick(wall time.Time) {
	if s.verify.left == 0 {
		return
	}
	if s.verify.ticks++; s.verify.ticks > 2*verifyPongs {
		s.confirmed(wall)
	}
}

// confirmed ends a verification that showed a change: the busy schedule
// comes back, and a bandwidth probe follows soon.
func (s *sampler) confirmed(wall time.Time) {
	s.verify.left = 0
	s.changeSeen(wall)
	s.nextProbe = minTime(s.nextProbe, maxTime(wall, s.lastProbe.Add(earlyProbeGap)))
}

// staleSeen judges a stale sample: on an idle link, a change once a ping
// sent after it (a verifying one, or a confirming ping of another
// change) went unanswered as well; one pong held up by a loaded machine
// is not. The first stale idle sample starts a verification at the busy
// ping rate, with no train, as a suspected RTT change does: its pings
// come back in time (the wake is dismissed, the link stays idle), or they
// expire one a sample interval after the other, and the outage is judged
// on them as on a busy link (MaxMissed stale samples), not one idle
// interval apart.
func (s *sampler) staleSeen(wall time.Time) {
	if !s.idle {
		s.changeSeen(wall)
		return
	}
	if s.idleOdd || s.verify.left > 0 {
		s.idleOdd = false
		s.confirmed(wall)
		return
	}
	s.m.mu.Lock()
	med := s.m.status.Median.RTT
	s.m.mu.Unlock()
	s.verify = idleVerify{left: verifyPongs, rtts: s.verify.rtts[:0], ref: med, jump: s.idleJump(med, 0), stale: true}
	s.m.log.Debug("idle link may be down; verifying at the busy rate", "median", med)
	s.pingNow()
}

// idleExpiry is a timer at the deadline of the oldest ping pending on an
// idle link, so that an unanswered idle ping is seen as stale at its
// deadline (max(SampleTimeout, 2 × RTT) after it was sent), not at the
// next idle tick, an idle interval later.
type idleExpiry struct {
	t  *time.Timer
	at time.Time // the deadline armed; zero: none
}

// C is the timer's channel; nil (never ready) while none was made.
func (e *idleExpiry) C() <-chan time.Time {
	if e.t == nil {
		return nil
	}
	return e.t.C
}

// arm sets the timer to the oldest pending ping's deadline while the
// link is on the idle schedule, and stops it otherwise (the busy ticks
// come sooner than any deadline).
func (e *idleExpiry) arm(s *sampler) {
	var oldest time.Time
	if s.idle && s.verify.left == 0 {
		for _, sent := range s.pending {
			if oldest.IsZero() || sent.Before(oldest) {
				oldest = sent
			}
		}
	}
	if oldest.IsZero() {
		if !e.at.IsZero() {
			e.t.Stop()
			e.at = time.Time{}
		}
		return
	}
	at := oldest.Add(s.deadline() + time.Millisecond) // past it, not at it
	if at.Equal(e.at) {
		return
	}
	e.at = at
	if e.t == nil {
		e.t = time.NewTimer(time.Until(at))
		return
	}
	e.t.Reset(time.Until(at))
}

func (e *idleExpiry) stop() {
	if e.t != nil {
		e.t.Stop()
	}
}

// idleExpire runs when the idle expiry timer fires: the pings past their
// deadline are lost, and a stale sample is judged as a tick would.
func (s *sampler) idleExpire() {
	s.expiry.at = time.Time{}
	wall := time.Now()
	if s.expire(wall) {
		s.emitStale(s.m.now())
		s.staleSeen(wall)
	}
}

// idleDrop follows a drop of bandwidth alone that two check trains found
// on an idle link (the capacity was rebased): the next samples carry the
// new figure, and pinged at the busy rate (a verification, no train) they
// move the class within a second, not MinSamples idle intervals; the
// class change then wakes the link (classMoved). A drop that leaves the
// class as it was is dismissed as a verification is, and the link stays
// idle. Called without m.mu held.
func (s *sampler) idleDrop() {
	if !s.idle || s.verify.left > 0 {
		return
	}
	s.m.mu.Lock()
	rtt := s.m.status.Median.RTT
	s.m.mu.Unlock()
	s.verify = idleVerify{left: verifyPongs, rtts: s.verify.rtts[:0], ref: rtt, jump: s.idleJump(rtt, 0)}
	s.m.log.Debug("idle link's bandwidth dropped; sampling at the busy ping rate", "median_rtt", rtt)
	s.pingNow()
}

// class is the class the link is judged in now.
func (s *sampler) class() edgesync.LinkClass {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return s.m.status.Class
}

// classMoved follows a class change: a link whose class just changed is
// in flux (a handover, a path failing over, a link coming back), and the
// next change is judged within the busy bounds for IdleAfter after it. A
// busy link counts it as activity. An idle link is pinged at the busy
// rate meanwhile (alertEnd), but sends no probe and no more check
// trains than idle: on an idle link it is the drop of bandwidth alone,
// found by check trains, that moves the class without waking it first
// (the other changes woke it before), and a loaded machine misreads
// short trains now and then; pings are cheap, the probe a wake sends is
// not.
func (s *sampler) classMoved(before edgesync.LinkClass) {
	if !s.m.cfg.idleScheduled() || s.class() == before {
		return
	}
	now := time.Now()
	if !s.idle {
		s.changeSeen(now)
		return
	}
	s.alertEnd = now.Add(s.m.cfg.IdleAfter)
	s.m.log.Debug("idle link's class changed; pinging at the busy rate", "until", s.alertEnd)
}

// pingNow sends one ping outside the schedule.
func (s *sampler) pingNow() {
	if s.prober == nil || !s.m.cfg.Active || len(s.pending) >= maxPendingPings {
		return
	}
	seq, cost, err := s.prober.Ping()
	if err != nil {
		return // the next tick's ping tells
	}
	s.pending[seq] = time.Now()
	s.m.curBudget().Spend(s.m.now(), cost)
	s.m.mu.Lock()
	s.m.stats.PingBytes += int64(cost)
	s.m.mu.Unlock()
}

// idleCheck spaces an idle link's check trains (a few packets each) to
// one per idle sample interval: they are what sees a drop of bandwidth
// alone, which pings cannot.
func (s *sampler) idleCheck(wall time.Time) {
	if s.idle && s.suspect == 0 {
		s.nextCheck = maxTime(s.nextCheck, wall.Add(s.idleEvery()))
	}
}

// idleProbeWait reports whether an idle link's bandwidth probe is not due
// yet at wall.
func (s *sampler) idleProbeWait(wall time.Time) bool {
	return s.idle && (s.verify.left > 0 || wall.Before(s.lastProbe.Add(max(s.m.cfg.IdleProbeInterval, s.m.cfg.ProbeInterval))))
}

// ackedTotal is the bytes acknowledged so far.
func (d *DeliveryMeter) ackedTotal() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.acked
}

// Idle reports whether the link is sampled on the idle schedule now.
func (m *Monitor) Idle() bool { return m.idleSt.idle.Load() }
