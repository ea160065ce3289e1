package linkmon

import (
	"context"
	"errors"
	"math"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// sampler is the state of the monitor's sampling goroutine for one
// measurement run; only that goroutine touches it.
type sampler struct {
	m      *Monitor
	ctx    context.Context // ends with the run
	prober *Prober
	pongs  <-chan PongResult

	pending    map[uint64]time.Time // ping seq -> sent
	lastAnswer time.Time
	outcomes   []bool // recent pings, answered or not (ring)
	outNext    int
	rtts       []time.Duration // recent answered RTTs, oldest first
	base       baseRTT         // the path's base RTT (basertt.go)
	lastQueue  time.Time       // wall time the RTTs last showed a queue above it
	passive    PassiveEstimator

	probing     bool
	probeCancel context.CancelFunc // of the probe or check in flight
	probeDone   chan probeOutcome
	nextProbe   time.Time
	lastProbe   time.Time
	nextCheck   time.Time
	failures    int
	rttAtProbe  time.Duration
	lossAtProbe float64
	missing     bool // the last sample was stale
	staleRun    int  // consecutive stale samples up to the last answer
	cancelled   bool // the probe in flight was ended at the link's return

	suspect        float64 // a check's estimate of a drop, awaiting its confirmation
	suspectPackets int     // that check's length
	rises          int     // consecutive checks that read a rise
	lows           int     // consecutive checks that read low within the jitter

	delivered   []float64 // recent link-filling delivery rates, oldest first
	lastFilled  time.Time // wall time of the latest of them
	lastLowerBd time.Time // wall time of the latest app-limited delivery rate
	// nearFull is the wall time of the latest app-limited delivery rate
	// near the capacity the trains measured (nearlyFull).
	nearFull time.Time
	// afterFill: the capacity is a link-filling delivery rate; once the
	// traffic stops a probe measures the link (maybeProbe), and fillProbe
	// marks that probe in flight.
	afterFill, fillProbe bool
	// dropRebase: a confirmed check drop rebased the bandwidth median; the
	// next probe's figure rebases it again, whichever way it reads.
	dropRebase bool
	// splitAgain: the last probe's trains split (splitProbe); while the
	// agent's own data is in flight the next comes earlyProbeGap after
	// it and no app-limited rate holds it (maybeProbe). Once: a second
	// split probe's figure stands.
	splitAgain bool

	// The idle schedule (idle.go).
	idle      bool
	idleOdd   bool          // an idle ping showed a change; the next confirms it
	every     time.Duration // the tick period in force
	activeAt  time.Time     // wall time the link last carried traffic or changed
	ackedSeen uint64        // the delivery meter's total then
	verify    idleVerify
	expiry    idleExpiry
	alertEnd  time.Time // an idle link is pinged at the busy rate until then (classMoved)
	busyWake  time.Time // wall time Busy last woke the idle link (starting)
}

type probeOutcome struct {
	check bool // a check train, not a bandwidth probe
	res   probeResult
	tr    TrainResult // a check's train
	err   error
}

// loop samples the link until ctx ends (Stop, Restart or Close).
func (m *Monitor) loop(ctx context.Context) {
	defer m.wg.Done()
	s := &sampler{m: m, ctx: ctx, pending: make(map[uint64]time.Time), probeDone: make(chan probeOutcome, 1),
		activeAt: time.Now(), every: m.cfg.SampleInterval}
	s.refresh()
	t := time.NewTicker(m.cfg.SampleInterval)
	defer t.Stop()
	defer s.expiry.stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.idleSt.wake:
			now := time.Now()
			s.wokenByBusy(now)
			s.busyNow(now)
			s.tick()
		case <-m.attachCh:
			s.busyNow(time.Now())
			s.refresh()
			s.maybeProbe()
		case <-m.wakeCh:
			m.mu.Lock()
			if m.remeasure {
				m.remeasure = false
				s.nextProbe = time.Time{}
			}
			m.mu.Unlock()
			s.maybeProbe()
		case pr := <-s.pongs:
			s.pong(pr)
		case out := <-s.probeDone:
			s.probed(out)
		case <-t.C:
			s.checkIdle(time.Now())
			s.tick()
		case <-s.expiry.C():
			s.idleExpire()
		}
		s.expiry.arm(s)
		if every := s.sampleEvery(); every != s.every {
			s.every = every
			t.Reset(every)
		}
	}
}

// refresh picks up the current prober after Attach or Detach.
func (s *sampler) refresh() {
	s.m.mu.Lock()
	p, conn := s.m.prober, s.m.conn
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
	s.base.reset()
	if conn != nil {
		s.base.seed(s.m.now(), conn.ConnectionStats().MinRTT) // its handshake's
	}
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
	stale := s.expire(wall)
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
			s.noteNearFull(meas, time.Now())
			s.notePassive(meas)
			s.emit(meas)
		}
	}
	if stale {
		s.emitStale(now)
		s.staleSeen(wall)
	}
	s.maybeProbe()
	s.maybeCheck()
}

// expire takes the pings unanswered past the deadline as lost, and
// reports whether their sample is stale: nothing was answered since one
// of them was sent.
func (s *sampler) expire(wall time.Time) (stale bool) {
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
	return stale
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

// forgetOutage takes the pings lost in an outage (the unanswered ones
// since the last answer) out of the loss ring and keeps those before it.
// Emptied, the ring judged the link back on its first few pings: one lost
// among 28 read 1.8 % on the demo's 0.1 % link
// (TestPingLossAfterOutageNotFromAFewPings).
func (s *sampler) forgetOutage() {
	kept := make([]bool, 0, lossPings) // oldest first
	if len(s.outcomes) == lossPings {
		kept = append(append(kept, s.outcomes[s.outNext:]...), s.outcomes[:s.outNext]...)
	} else {
		kept = append(kept, s.outcomes...)
	}
	for len(kept) > 0 && !kept[len(kept)-1] {
		kept = kept[:len(kept)-1]
	}
	s.outcomes, s.outNext = kept, 0
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
	// An idle link's stale sample being verified (staleSeen) is no
	// outage yet: its pongs judge it.
	verifying := s.idle && s.verify.left > 0
	if s.missing && !verifying {
		// The link is back after an outage. The pings and packets lost
		// while it was down were the outage, already judged as such:
		// counting them as loss would hold a recovered link at
		// intermittent for a whole loss window.
		// The same goes for the pings still pending: sent into the
		// outage, they would time out in the next ticks and fill the new
		// link's loss ring (the demo showed 12 % on a 0.1 % link after an
		// outage, falling over the 20 s loss window).
		s.forgetOutage()
		clear(s.pending)
		s.passive = AfterOutage(s.m.now(), max(time.Second, 4*pr.RTT))
		s.base.reset()
	}
	if s.staleRun > s.m.cfg.Classifier.MaxMissed {
		// Back from a real outage (not one stale sample on a lossy
		// link): a probe still waiting for its report sent its trains
		// into the outage; end it, so the capacity is measured again at
		// once.
		s.failures = 0
		if s.probing && s.probeCancel != nil {
			s.probeCancel()
			s.cancelled = true
		}
	}
	s.staleRun = 0
	s.record(true)
	if sent.After(s.lastAnswer) {
		s.lastAnswer = sent
	}
	s.rtts = append(s.rtts, pr.RTT)
	if len(s.rtts) > jitterPings {
		s.rtts = s.rtts[1:]
	}
	now := s.m.now()
	s.base.add(now, pr.RTT)
	if s.base.newPath(now) {
		s.lastQueue = time.Time{} // judged against the new path's base from now on
	}
	s.m.mu.Lock()
	capBps, capAt, ref := s.m.capBps, s.m.capAt, s.m.linkRef()
	s.m.mu.Unlock()
	meas := Measurement{RTT: pr.RTT, Jitter: s.jitter(), Loss: s.loss(), At: now, Method: MethodActive}
	// The latest train estimate rides on every answered sample, so the
	// bandwidth median follows a new probe within a few samples.
	if capBps > 0 && (capAt.IsZero() || now.Sub(capAt) <= s.m.cfg.Classifier.Window) {
		meas.BandwidthBps = capBps
	}
	if s.m.cfg.Passive {
		if pm, ok := s.passiveSample(now); ok {
			wall := time.Now()
			s.noteNearFull(pm, wall)
			if queued(s.rtts, s.base.min(), s.jitter()) {
				s.lastQueue = wall
			}
			if !pm.BandwidthLowerBound && senderLimited(pm.BandwidthBps, ref, queueRecent(wall, s.lastQueue, s.base.min())) {
				pm.BandwidthLowerBound = true
				s.m.mu.Lock()
				s.m.stats.SenderLimited++
				s.m.mu.Unlock()
			}
			s.notePassive(pm)
			meas = Combine(meas, pm)
		}
		if base := s.base.min(); s.sending(time.Now()) && base > 0 && base < meas.RTT {
			meas.RTT = base // the path's, not our own queue's (basertt.go)
		}
	}
	s.emit(meas)

	// Probe early when the path changed: RTT or loss jumped, or the link
	// came back.
	jump := s.rttAtProbe > 0 && math.Abs(float64(pr.RTT-s.rttAtProbe)) > rttJump*float64(s.rttAtProbe) &&
		absDur(pr.RTT-s.rttAtProbe) > 5*time.Millisecond
	s.idlePong(pr.RTT, meas.Loss-s.lossAtProbe > 0.05)
	if jump || s.missing || meas.Loss-s.lossAtProbe > 0.05 {
		if s.missing && !verifying {
			s.changeSeen(time.Now())
		}
		early := s.lastProbe.Add(earlyProbeGap)
		if s.nextProbe.After(early) {
			s.nextProbe = early
		}
		s.rttAtProbe = pr.RTT // one early probe per jump
		s.lossAtProbe = meas.Loss
	}
	s.missing = false
	s.maybeProbe()
	s.maybeCheck()
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
	rtt := st.SmoothedRTT
	if len(s.rtts) > 0 {
		rtt = s.rtts[len(s.rtts)-1]
	}
	dr := s.m.meter.Rate(time.Now(), s.m.cfg.SampleInterval, rtt)
	return s.passive.Observe(ConnSample{At: now, SmoothedRTT: st.SmoothedRTT, MeanDeviation: st.MeanDeviation,
		BytesSent: st.BytesSent, BytesLost: st.BytesLost, BytesAcked: acked, AppLimited: appLimited, Delivery: dr})
}

// filledFor is how long a link-filling delivery rate stands in for the
// bandwidth probe, and the span its median is taken over.
const filledFor = 2 * time.Second

// filledSamples is how many link-filling delivery rates the capacity is the
// median of.
const filledSamples = 5

// notePassive takes a passive measurement's delivery rate into the
// monitor's capacity estimate. A rate from a link-filling sender is the
// capacity now: the capacity becomes the median of the last few, so that
// the light samples carry it after the traffic stops (and not an older
// train estimate), and no probe runs while they keep coming. An
// app-limited rate only raises the estimate.
func (s *sampler) notePassive(pm Measurement) {
	if pm.BandwidthBps <= 0 || pm.Stale {
		return
	}
	wall := time.Now()
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if pm.BandwidthLowerBound {
		s.lastLowerBd = wall
		if pm.BandwidthBps > s.m.capBps {
			s.m.capBps, s.m.capAt, s.m.capRef = pm.BandwidthBps, pm.At, 0
		}
		return
	}
	if wall.Sub(s.lastFilled) > filledFor {
		s.delivered = s.delivered[:0]
	}
	s.delivered = append(s.delivered, pm.BandwidthBps)
	if len(s.delivered) > filledSamples {
		s.delivered = s.delivered[1:]
	}
	s.lastFilled, s.afterFill = wall, true
	s.m.capBps, s.m.capAt, s.m.capRef = median(s.delivered), pm.At, 0
	s.m.stats.Delivered++
}

// sending reports whether any delivery rate, link-filling or a lower
// bound, is fresh: the agent's own data is in flight and may queue.
func (s *sampler) sending(wall time.Time) bool {
	return s.filled(wall) || s.m.cfg.Passive && !s.lastLowerBd.IsZero() && wall.Sub(s.lastLowerBd) < filledFor
}

// noteNearFull notes, at wall, a delivery rate its sender marked
// app-limited that carries most of the capacity the trains measured
// (nearlyFull). Not one the monitor judged sender-limited
// (senderLimited): that sender does not know what holds it back, and its
// traffic may stop at any moment, after which a probe must measure the
// link at once (TestSatelliteFigureAfterTransfer).
func (s *sampler) noteNearFull(pm Measurement, wall time.Time) {
	if !pm.BandwidthLowerBound || pm.Stale {
		return
	}
	s.m.mu.Lock()
	ref := s.m.linkRef()
	s.m.mu.Unlock()
	if ref > 0 && pm.BandwidthBps >= nearlyFullShare*ref && pm.BandwidthBps <= ref/belowCapacity {
		s.nearFull = wall
	}
}

// nearlyFullShare is the least share of the trains' capacity an
// app-limited delivery rate carries to hold trains (nearlyFull).
const nearlyFullShare = 0.5

// filled reports whether a link-filling sender's delivery rate is fresh.
func (s *sampler) filled(wall time.Time) bool {
	return s.m.cfg.Passive && !s.lastFilled.IsZero() && wall.Sub(s.lastFilled) < filledFor
}

// nearlyFull reports whether the agent's own data, though its sender
// says something other than the link holds it back, carries most of what
// the link does: an app-limited delivery rate between nearlyFullShare and
// 1 / belowCapacity × the capacity the trains measured is fresh. A sender
// bounded by its own window near the link's product (the packed small
// ops' budget, agent/packbudget.go) marks its rates app-limited, so that
// they never lower the capacity its window follows; it sends in bursts
// (a pack at a time) that queue at the bottleneck, and a train sent
// meanwhile reads its share of that queue, not the link, and delays the
// data: under a packed drain on a 20 Mbit/s link, checks read 12 Mbit/s
// to 1.5 Gbit/s, called a probe every second and sent 2.1 MB in 11 s
// (TestPackedDrainStatusTrue). Like filled, it holds probes and checks. A
// rate below that share leaves room a train can measure, and one well
// above the trains' capacity says they read the link low (a probe sent
// into the data's queue read 8 Mbit/s on that link), which only a new
// probe corrects: the capacity the window follows would rise only as
// fast as the window lets the rate grow (docs/linkmon.md, "Under the
// agent's own load").
func (s *sampler) nearlyFull(wall time.Time) bool {
	return s.m.cfg.Passive && !s.nearFull.IsZero() && wall.Sub(s.nearFull) < filledFor
}

// startRounds: the agent's own data holds trains for max(filledFor,
// startRounds × the path's base RTT) from its first acknowledgement
// (starting), the time a rate model takes to leave its start-up.
const startRounds = 8

// starting reports whether the agent's own data began to be acknowledged
// less than max(filledFor, startRounds base RTTs) ago and still is. Its
// first rates are lower bounds (a sender starting up marks them
// app-limited) and its start-up queues at the bottleneck: a train then
// reads that queue, not the link, and delays the data. Probes and checks
// wait: by the hold's end the sender's rate has taken over (filled) or
// says it is app-limited, and a probe due meanwhile runs then
// (TestNoTrainsWhileOwnSenderStarts; docs/linkmon.md, "Under the agent's
// own load").
//
// The hold also starts at a Busy that woke an idle link (busyWake; with
// or without the passive estimator): the op it announces goes out at
// once, and a probe that fell due while the link was idle would
// otherwise start at that moment and queue its train ahead of the op,
// before the op's first acknowledgement (TestBusyWakeSendsNoTrainAhead;
// docs/linkmon.md, "Idle links").
func (s *sampler) starting(wall time.Time) bool {
	hold := max(filledFor, startRounds*s.base.min())
	if !s.busyWake.IsZero() && wall.Sub(s.busyWake) < hold {
		return true
	}
	if !s.m.cfg.Passive {
		return false
	}
	start, last := s.m.meter.run()
	return !start.IsZero() && wall.Sub(last) < filledFor && wall.Sub(start) < hold
}

func (s *sampler) emit(meas Measurement) {
	before := s.class()
	s.m.observe(meas)
	s.classMoved(before)
}

// emitStale feeds the last measurement, marked stale.
func (s *sampler) emitStale(now time.Time) {
	meas := s.m.Latest()
	meas.At, meas.Stale = now, true
	s.missing = true
	s.staleRun++
	s.m.observe(meas)
}

// maybeProbe starts a bandwidth probe when one is due.
func (s *sampler) maybeProbe() {
	if s.probing || s.prober == nil || !s.m.cfg.Active {
		return
	}
	wall := time.Now()
	// The capacity a transfer left is its sender's delivery rate, which may
	// be the sender's own (1.64 Mbit/s held on a 2 Mbit/s satellite uplink
	// after a transfer; docs/linkmon.md, "A transfer's rate is not the
	// link's"): measure the link once the traffic stops, whatever the
	// schedule.
	afterFill := s.afterFill && !s.filled(wall) && wall.Sub(s.lastProbe) >= earlyProbeGap
	// A split probe is measured again soon while the agent's own data
	// nearly fills the link (probed).
	again := s.splitAgain && s.nearlyFull(wall) && wall.Sub(s.lastProbe) >= earlyProbeGap
	if !afterFill && !again && (wall.Before(s.nextProbe) || s.idleProbeWait(wall)) {
		return
	}
	if s.filled(wall) || s.nearlyFull(wall) && !s.splitAgain {
		// Real traffic fills the link: its delivery rate is the capacity
		// (or nearly reaches it), and a train now would only queue behind
		// it.
		s.nextProbe = wall.Add(s.m.cfg.ProbeInterval)
		return
	}
	if s.starting(wall) && !s.nextProbe.IsZero() {
		// The probe stays due: it runs after the hold unless the traffic
		// fills the link. One asked for at once (a new connection, whose
		// first figure hints the lane's start-up, or a remeasure) goes.
		return
	}
	// A scheduled probe yields to the agent's own data beginning while it
	// runs; one asked for at once does not.
	yield := !s.nextProbe.IsZero()
	s.probing, s.lastProbe = true, wall
	s.afterFill, s.fillProbe = false, afterFill
	p := s.prober
	ctx, cancel := context.WithCancel(s.ctx)
	s.probeCancel = cancel
	s.m.wg.Add(1)
	go func() {
		defer s.m.wg.Done()
		defer cancel()
		res, err := s.m.probe(ctx, p, yield)
		s.probeDone <- probeOutcome{res: res, err: err} // buffered; one probe at a time
	}()
}

// Check trains: between bandwidth probes, a short train sized to cross the
// bottleneck in checkDispersion at the estimated capacity looks for a
// change of bandwidth alone (same RTT), which pings cannot see. On a link
// that got slower the same train takes proportionally longer and measures
// the new rate; the monitor takes it at once and confirms it with a full
// probe.
const (
	// checkDispersion is a check train's target time at the bottleneck.
	checkDispersion = time.Millisecond
	// minCheckPackets is the shortest check train.
	minCheckPackets = 3
	// checkInterval is the soonest a check follows another.
	checkInterval = 250 * time.Millisecond
	// checkShare is the share of the probe budget checks may use.
	checkShare = 0.25
	// checkCeiling: no check while the budget is spent to this share.
	checkCeiling = 0.85
	// checkDrop and checkRise: a check below checkDrop × the capacity is
	// taken as a drop, one above checkRise × it calls a probe early.
	checkDrop, checkRise = 0.6, 1.6
	// checkJitterSpread is how far the path's jitter (the mean difference
	// of successive RTTs) is taken to spread a train's arrivals: 2 ×. A
	// uniform extra delay of up to J per packet (linksim's lte: 10 ms)
	// gives RTTs whose successive differences average about J/2, and
	// spreads a train by up to J.
	checkJitterSpread = 2
)

// dropBeyondJitter reports whether a check train of n packets that read
// est reads below checkDrop × capBps even with checkJitterSpread × jitter
// taken off its spread. On lte (10 Mbit/s, 10 ms of jitter) a 2 ms check
// of 4 packets is spread to 9 ms now and then by the jitter alone and
// reads 3 Mbit/s; a second check confirmed that often enough to set the
// capacity to a third of the link for a second or two
// (TestJitteryCheckKeepsCapacity). A drop the jitter cannot explain (the
// train's spread longer than it by the drop's margin) is taken as before.
func dropBeyondJitter(est, capBps float64, n int, jitter time.Duration) bool {
	if !(est < checkDrop*capBps) || est <= 0 {
		return false
	}
	bits := float64((max(n, 2) - 1) * ProbePacketSize * 8)
	rest := bits/est - checkJitterSpread*jitter.Seconds()
	return rest > 0 && bits/rest < checkDrop*capBps
}

// maxCheckDispersion caps the lengthening of check trains for jitter. The
// jitter figure also jumps for a couple of seconds after any RTT step,
// and longer checks would then come rarely just when the path changes;
// on a truly jittery path a check that reads a drop by mistake is caught
// by its confirmation.
const maxCheckDispersion = 2 * checkDispersion

// checkPackets sizes a check train for a capacity and jitter: 0 while the
// capacity is unknown; lengthened to half the jitter on a jittery path (up
// to maxCheckDispersion).
func checkPackets(capBps float64, jitter time.Duration) int {
	if !(capBps > 0) || math.IsInf(capBps, 0) {
		return 0
	}
	d := min(max(checkDispersion, jitter/2), maxCheckDispersion)
	n := 1 + int(math.Ceil(capBps/8*d.Seconds()/ProbePacketSize))
	return min(maxTrainPackets, max(minCheckPackets, n))
}

// maybeCheck sends a check train when one is due and nothing else is
// probing.
func (s *sampler) maybeCheck() {
	if s.probing || s.prober == nil || !s.m.cfg.Active || s.missing || s.verify.left > 0 {
		return
	}
	wall := time.Now()
	if wall.Before(s.nextCheck) || s.filled(wall) || s.nearlyFull(wall) || s.starting(wall) {
		return
	}
	s.m.mu.Lock()
	capBps, jitter, rtt := s.m.capBps, s.m.status.Median.Jitter, s.m.status.Median.RTT
	class := s.m.status.Class
	s.m.mu.Unlock()
	packets := checkPackets(capBps, jitter)
	if s.suspect > 0 {
		packets = s.suspectPackets // the confirming check repeats the first
	}
	// No checks on satellite: its 1 % budget is spent by the probes
	// alone, and at its RTT a check gains little over the next probe.
	if packets == 0 || class == edgesync.Intermittent || class == edgesync.Satellite {
		s.nextCheck = wall.Add(checkInterval)
		return
	}
	// Spaced so that checks use what the probes and pings leave of the
	// budget (half of it), at most checkShare of the budget.
	avail := s.checkAllowance(max(capBps, s.suspect))
	if avail <= 0 {
		s.nextCheck = wall.Add(checkInterval)
		return
	}
	win := s.m.cfg.Budget.Window
	s.nextCheck = wall.Add(max(checkInterval, time.Duration(float64(win)*float64(packets*ProbePacketSize)/avail)))
	s.idleCheck(wall)
	s.probing = true
	p := s.prober
	timeout := min(s.m.cfg.ProbeTimeout, max(s.m.cfg.SampleTimeout, 3*rtt+reportWait))
	ctx, cancel := context.WithTimeout(s.ctx, timeout)
	s.probeCancel = cancel
	s.m.wg.Add(1)
	go func() {
		defer s.m.wg.Done()
		defer cancel()
		tr, err := s.m.check(ctx, p, packets)
		s.probeDone <- probeOutcome{check: true, tr: tr, err: err}
	}()
}

// pingCost approximates a ping's bytes with its pong's acknowledgement.
const pingCost = 128

// checkAllowance is the bytes per budget window that check trains may
// use at capacity capBps: half of what the budget leaves after the
// bandwidth probes (their trains as sized on a path without jitter) and
// pings at their usual rate, at most checkShare of it. On a slow link the
// probes' shortest trains take most of the budget and checks come seconds
// apart, or not at all. The budget itself still refuses what does not
// fit.
func (s *sampler) checkAllowance(capBps float64) float64 {
	cfg := &s.m.cfg
	win := cfg.Budget.Window.Seconds()
	limit := float64(s.m.curBudget().Limit(capBps))
	probes := win / cfg.ProbeInterval.Seconds() * float64(cfg.TrainsPerProbe*trainPackets(capBps, 0)*ProbePacketSize)
	pings := win / cfg.SampleInterval.Seconds() * pingCost
	return min(checkShare*limit, 0.5*(limit-probes-pings))
}

// reportWait is how long the responder waits after a train's last arrival
// before it reports an incomplete train.
const reportWait = 250 * time.Millisecond

// checked acts on a check train's estimate. A drop is confirmed by a
// second check sent at once, sized for the suspected rate (timer noise
// rarely slows two trains alike); the capacity then becomes the second's
// estimate, the light samples carry it from the next one, and a bandwidth
// probe follows to refine it. A check that reads low by no more than the
// path's jitter explains (dropBeyondJitter) moves nothing: like a rise,
// the second such check in a row calls the next probe early, whose
// trains are sized for the jitter. Two rises in a row call it too.
func (s *sampler) checked(out probeOutcome) {
	suspect := s.suspect
	s.suspect = 0
	if out.err != nil || !out.tr.OK {
		s.m.log.Trace("check failed", "error", out.err, "received", out.tr.Received, "count", out.tr.Count)
		return // says nothing certain; pings judge outages
	}
	wall := time.Now()
	jitter := s.pathJitter()
	s.m.mu.Lock()
	capBps := s.m.capBps
	est := out.tr.Bps
	jittery := est < checkDrop*capBps && !dropBeyondJitter(est, capBps, out.tr.Received, jitter)
	if !jittery {
		s.lows = 0
	}
	switch {
	case jittery:
		s.m.stats.CheckJittery++
		s.lows++
		if s.lows >= 2 {
			s.lows = 0
			s.nextProbe = minTime(s.nextProbe, maxTime(wall, s.lastProbe.Add(earlyProbeGap)))
		}
	case est < checkDrop*capBps && suspect > 0:
		s.m.capRef = max(s.m.capRef, capBps)
		s.m.capBps, s.m.capAt, s.m.trainBps = est, s.m.now(), est
		s.m.cls.Rebase(est)
		s.dropRebase = true
		s.nextProbe = maxTime(wall, s.lastProbe.Add(earlyProbeGap))
		s.m.stats.CheckDrops++
		defer s.idleDrop()
	case est < checkDrop*capBps:
		// Confirm with a train sized for the suspected rate: short
		// enough not to overflow the slower link's queue.
		s.suspect = est
		s.suspectPackets = min(out.tr.Count, max(MinTrainPackets, ProbeSize(est)/ProbePacketSize))
		s.nextCheck = time.Time{}
	case est > checkRise*capBps:
		// Timer noise on a short train reads high more often than low:
		// the second such check in a row calls the probe.
		s.rises++
		if s.rises >= 2 {
			s.rises = 0
			s.nextProbe = minTime(s.nextProbe, maxTime(wall, s.lastProbe.Add(earlyProbeGap)))
		}
	default:
		s.rises = 0
	}
	s.m.mu.Unlock()
	s.m.log.Trace("check", "estimate", FormatBps(est), "capacity", FormatBps(capBps), "suspect", FormatBps(suspect))
	if s.suspect > 0 {
		s.maybeCheck()
	}
}

// pathJitterWindow is how far back pathJitter looks.
const pathJitterWindow = 10 * time.Second

// pathJitter is the path's own jitter for judging a check: the lowest
// jitter figure of the samples over the last pathJitterWindow. The figure
// jumps for a couple of seconds after any step of the RTT, the queue of a
// link that just got slower included (BenchmarkDetection's 100 → 5 Mbit/s
// showed 5-18 ms on a path without jitter, which hid the drop from the
// checks and took its p95 from 2.25 to 7.5 s); a jittery path's figure
// stays up.
func (s *sampler) pathJitter() time.Duration {
	var low time.Duration
	for _, h := range s.m.History(pathJitterWindow) {
		if !h.Stale && h.Jitter > 0 && (low == 0 || h.Jitter < low) {
			low = h.Jitter
		}
	}
	return low
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (s *sampler) probed(out probeOutcome) {
	cancelled := s.cancelled
	s.probing, s.probeCancel, s.cancelled = false, nil, false
	if out.check {
		s.checked(out)
		return
	}
	wall := time.Now()
	interval := max(s.m.cfg.ProbeInterval, out.res.spend)
	fillProbe := s.fillProbe
	s.fillProbe = false
	switch {
	case out.err == nil:
		s.failures = 0
		if fillProbe || s.dropRebase {
			// The samples carried the sender's rate, or the figure of a
			// check drop this probe was called to verify, no spike of
			// the link's for the median to ride out: the probe's figure
			// replaces it (as a confirmed check's does). Two short checks
			// that a loaded CPU spread read a drop now and then; the
			// median held their figure for 5 samples after the probe had
			// read the link as before (TestProbeAfterCheckDropRebases).
			s.dropRebase = false
			s.m.mu.Lock()
			s.m.cls.Rebase(out.res.bps)
			s.m.mu.Unlock()
		}
		if out.res.spend == 0 {
			interval = earlyProbeGap // the train was undersized: measure again soon
		}
		// A split probe's median may be a stray train's, and if it reads
		// high, the agent's own app-limited data, whose rates only raise
		// the figure, holds every later train while it nearly fills the
		// link: measure again soon, past that hold, once.
		// Only while the agent's own data is in flight (maybeProbe): on
		// an idle loopback, where trains split often, the early probes
		// ran into the idle schedule's tests.
		s.splitAgain = out.res.split && !s.splitAgain
		if s.splitAgain && s.sending(wall) {
			interval = earlyProbeGap
			s.m.log.Debug("probe trains split: measuring again", "estimate", FormatBps(out.res.bps))
		}
		if len(s.rtts) > 0 {
			s.rttAtProbe = s.rtts[len(s.rtts)-1]
		}
		s.lossAtProbe = s.loss()
	case errors.Is(out.err, ErrBudgetExhausted):
		interval = max(out.res.spend/4, earlyProbeGap)
	case errors.Is(out.err, ErrNotAttached) || s.ctx.Err() != nil:
		return
	case errors.Is(out.err, errUnmeasurable):
		// Answered but unmeasurable: smaller trains next time (probe
		// halved the estimate), at the normal interval.
	case cancelled:
		// Ended when the link came back: measure it again at once.
		interval = 0
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
