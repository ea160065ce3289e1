package linkmon

import (
	"errors"
	"math"
	"time"
)

// sampler is the state of the monitor's sampling goroutine; only that
// goroutine touches it.
type sampler struct {
	m      *Monitor
	prober *Prober
	pongs  <-chan PongResult

	pending    map[uint64]time.Time // ping seq -> sent
	lastAnswer time.Time
	outcomes   []bool // recent pings, answered or not (ring)
	outNext    int
	rtts       []time.Duration // recent answered RTTs, oldest first
	passive    PassiveEstimator

	probing     bool
	probeDone   chan probeOutcome
	nextProbe   time.Time
	lastProbe   time.Time
	failures    int
	rttAtProbe  time.Duration
	lossAtProbe float64
	missing     bool // the last sample was stale
}

type probeOutcome struct {
	res probeResult
	err error
}

func (m *Monitor) loop() {
	defer m.wg.Done()
	s := &sampler{m: m, pending: make(map[uint64]time.Time), probeDone: make(chan probeOutcome, 1)}
	s.refresh()
	t := time.NewTicker(m.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.attachCh:
			s.refresh()
			s.maybeProbe()
		case <-m.wakeCh:
			s.maybeProbe()
		case pr := <-s.pongs:
			s.pong(pr)
		case out := <-s.probeDone:
			s.probed(out)
		case <-t.C:
			s.tick()
		}
	}
}

// refresh picks up the current prober after Attach or Detach.
func (s *sampler) refresh() {
	s.m.mu.Lock()
	p := s.m.prober
	s.m.mu.Unlock()
	if p == s.prober {
		return
	}
	s.prober = p
	s.pongs = nil
	if p != nil {
		s.pongs = p.Pongs()
		s.nextProbe = time.Time{} // probe a new connection at once
	}
	clear(s.pending)
	s.passive = PassiveEstimator{}
}

// deadline is how long a ping may take before its sample is stale:
// max(SampleTimeout, 2 × RTT).
func (s *sampler) deadline() time.Duration {
	s.m.mu.Lock()
	rtt := s.m.status.Median.RTT
	s.m.mu.Unlock()
	return max(s.m.cfg.SampleTimeout, 2*rtt)
}

func (s *sampler) tick() {
	now := s.m.now()
	wall := time.Now()
	stale := false
	// Expired pings: lost; their sample is stale if nothing was answered
	// since they were sent.
	dl := s.deadline()
	for seq, sent := range s.pending {
		if wall.Sub(sent) < dl {
			continue
		}
		delete(s.pending, seq)
		s.record(false)
		if s.lastAnswer.Before(sent) {
			stale = true
		}
	}
	attached := s.prober != nil
	if attached {
		select {
		case <-s.prober.Done():
			attached = false
		default:
		}
	}
	switch {
	case !attached:
		stale = true
	case s.m.cfg.Active:
		if len(s.pending) < maxPendingPings {
			seq, cost, err := s.prober.Ping()
			if err != nil {
				stale = true
			} else {
				s.pending[seq] = wall
				s.m.curBudget().Spend(now, cost)
				s.m.mu.Lock()
				s.m.stats.PingBytes += int64(cost)
				s.m.mu.Unlock()
			}
		}
	default: // passive only
		if meas, ok := s.passiveSample(now); ok {
			s.emit(meas)
		}
	}
	if stale {
		s.emitStale(now)
	}
	s.maybeProbe()
}

// record adds one ping outcome to the loss ring.
func (s *sampler) record(answered bool) {
	if len(s.outcomes) < lossPings {
		s.outcomes = append(s.outcomes, answered)
		return
	}
	s.outcomes[s.outNext] = answered
	s.outNext = (s.outNext + 1) % lossPings
}

// loss returns the one-way loss estimated from the recent pings' round-trip
// loss p, assuming both directions lose alike: 1 − √(1 − p). The
// classifier's thresholds are one-way figures (linksim's profiles, QUIC's
// own loss counter).
func (s *sampler) loss() float64 {
	if len(s.outcomes) == 0 {
		return 0
	}
	lost := 0
	for _, ok := range s.outcomes {
		if !ok {
			lost++
		}
	}
	p := float64(lost) / float64(len(s.outcomes))
	return 1 - math.Sqrt(1-p)
}

func (s *sampler) jitter() time.Duration {
	if len(s.rtts) < 2 {
		return 0
	}
	var sum time.Duration
	for i := 1; i < len(s.rtts); i++ {
		d := s.rtts[i] - s.rtts[i-1]
		sum += max(d, -d)
	}
	return sum / time.Duration(len(s.rtts)-1)
}

func (s *sampler) pong(pr PongResult) {
	sent, ok := s.pending[pr.Seq]
	if !ok {
		return // late (already counted lost) or duplicate
	}
	delete(s.pending, pr.Seq)
	if s.missing {
		// The link is back after an outage. The pings and packets lost
		// while it was down were the outage, already judged as such:
		// counting them as loss would hold a recovered link at
		// intermittent for a whole loss window.
		s.outcomes, s.outNext = s.outcomes[:0], 0
		s.passive = PassiveEstimator{}
	}
	s.record(true)
	if sent.After(s.lastAnswer) {
		s.lastAnswer = sent
	}
	s.rtts = append(s.rtts, pr.RTT)
	if len(s.rtts) > jitterPings {
		s.rtts = s.rtts[1:]
	}
	now := s.m.now()
	s.m.mu.Lock()
	capBps, capAt := s.m.capBps, s.m.capAt
	s.m.mu.Unlock()
	meas := Measurement{RTT: pr.RTT, Jitter: s.jitter(), Loss: s.loss(), At: now, Method: MethodActive}
	// The latest train estimate rides on every answered sample, so the
	// bandwidth median follows a new probe within a few samples.
	if capBps > 0 && (capAt.IsZero() || now.Sub(capAt) <= s.m.cfg.Classifier.Window) {
		meas.BandwidthBps = capBps
	}
	if s.m.cfg.Passive {
		if pm, ok := s.passiveSample(now); ok {
			meas = Combine(meas, pm)
		}
	}
	s.emit(meas)

	// Probe early when the path changed: RTT or loss jumped, or the link
	// came back.
	jump := s.rttAtProbe > 0 && math.Abs(float64(pr.RTT-s.rttAtProbe)) > rttJump*float64(s.rttAtProbe) &&
		absDur(pr.RTT-s.rttAtProbe) > 5*time.Millisecond
	if jump || s.missing || meas.Loss-s.lossAtProbe > 0.05 {
		early := s.lastProbe.Add(earlyProbeGap)
		if s.nextProbe.After(early) {
			s.nextProbe = early
		}
		s.rttAtProbe = pr.RTT // one early probe per jump
		s.lossAtProbe = meas.Loss
	}
	s.missing = false
	s.maybeProbe()
}

func absDur(d time.Duration) time.Duration { return max(d, -d) }

// passiveSample reads the connection's counters.
func (s *sampler) passiveSample(now time.Time) (Measurement, bool) {
	s.m.mu.Lock()
	conn := s.m.conn
	s.m.mu.Unlock()
	if conn == nil {
		return Measurement{}, false
	}
	st := conn.ConnectionStats()
	acked, appLimited := s.m.meter.Snapshot()
	return s.passive.Observe(ConnSample{At: now, SmoothedRTT: st.SmoothedRTT, MeanDeviation: st.MeanDeviation,
		BytesSent: st.BytesSent, BytesLost: st.BytesLost, BytesAcked: acked, AppLimited: appLimited})
}

func (s *sampler) emit(meas Measurement) { s.m.observe(meas) }

// emitStale feeds the last measurement, marked stale.
func (s *sampler) emitStale(now time.Time) {
	meas := s.m.Latest()
	meas.At, meas.Stale = now, true
	s.missing = true
	s.m.observe(meas)
}

// maybeProbe starts a bandwidth probe when one is due.
func (s *sampler) maybeProbe() {
	if s.probing || s.prober == nil || !s.m.cfg.Active {
		return
	}
	wall := time.Now()
	if wall.Before(s.nextProbe) {
		return
	}
	s.probing, s.lastProbe = true, wall
	p := s.prober
	s.m.wg.Add(1)
	go func() {
		defer s.m.wg.Done()
		res, err := s.m.probe(s.m.ctx, p)
		s.probeDone <- probeOutcome{res, err} // buffered; one probe at a time
	}()
}

func (s *sampler) probed(out probeOutcome) {
	s.probing = false
	wall := time.Now()
	interval := max(s.m.cfg.ProbeInterval, out.res.spend)
	switch {
	case out.err == nil:
		s.failures = 0
		if out.res.spend == 0 {
			interval = earlyProbeGap // the train was undersized: measure again soon
		}
		if len(s.rtts) > 0 {
			s.rttAtProbe = s.rtts[len(s.rtts)-1]
		}
		s.lossAtProbe = s.loss()
	case errors.Is(out.err, ErrBudgetExhausted):
		interval = max(out.res.spend/4, earlyProbeGap)
	case errors.Is(out.err, ErrNotAttached) || s.m.ctx.Err() != nil:
		return
	case errors.Is(out.err, errUnmeasurable):
		// Answered but unmeasurable: smaller trains next time (probe
		// halved the estimate), at the normal interval.
	case s.lastAnswer.After(s.lastProbe):
		// Unanswered, but pings were answered since the probe began: the
		// link came back during it. Probe again soon, no back-off.
		interval = earlyProbeGap
	default:
		// Unanswered: the last measurement, marked stale; back off.
		s.failures++
		s.m.log.Debug("bandwidth probe failed", "error", out.err, "failures", s.failures)
		s.emitStale(s.m.now())
		interval *= time.Duration(1 << min(s.failures, 3))
	}
	s.nextProbe = wall.Add(interval)
}
