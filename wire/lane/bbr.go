package lane

import (
	"math"
	"time"
)

// BBR-like rate model (after draft-cardwell-iccrg-bbr-congestion-control,
// v1 state machine without ProbeRTT). The sender paces at
// pacingGain × bottleneck bandwidth and keeps at most cwndGain × BDP in
// flight. Random loss does not lower the rate: only the delivery rate the
// receiver actually achieves does, through the windowed max filter.
const (
	startupGain     = 2.885 // 2/ln 2: doubles the delivery rate each round
	drainGain       = 1 / startupGain
	probeCwndGain   = 2.0
	bwWindowRounds  = 10
	minRTTWindow    = 10 * time.Second
	fullBwGrowth    = 1.25
	fullBwRounds    = 3
	initialCwndPkts = 32
	// minCwndPkts is the window's floor: two feedbacks' worth of packets.
	// The receiver acknowledges every feedbackEvery packets, else only
	// after maxAckDelay; with fewer packets allowed in flight every ack
	// waited maxAckDelay, each delivery-rate sample read the window per
	// maxAckDelay (4 packets: 2 Mbit/s), the window followed that rate and
	// the lane stayed there on a gigabit link (docs/lane.md, "The
	// window's floor").
	minCwndPkts      = 2 * feedbackEvery
	startupLossLimit = 0.15 // a round losing more than this ends startup (queue overflow, not noise)
	startupLossMin   = 8    // ...when at least this many packets were lost in it
	// hintedStartupGain is startup's gain after a Hint.
	hintedStartupGain = 1.25
)

var probeGains = [...]float64{1.25, 0.75, 1, 1, 1, 1, 1, 1}

type bbrState int

const (
	stateStartup bbrState = iota
	stateDrain
	stateProbeBW
)

func (s bbrState) String() string {
	switch s {
	case stateStartup:
		return "startup"
	case stateDrain:
		return "drain"
	default:
		return "probe_bw"
	}
}

// bwSample is the best delivery rate seen in one round.
type bwSample struct {
	round int64
	bw    float64 // bytes per second
}

// model is the congestion state of one sender. Not safe for concurrent use.
type model struct {
	mss      float64
	state    bbrState
	maxRate  float64 // ceiling in bytes/s; 0 none
	samples  []bwSample
	btlbw    float64
	minRTT   time.Duration
	minStamp time.Time
	minSet   bool // minRTT is a measured sample, not the initial guess

	round             int64
	nextRoundDelivery int64
	roundStart        bool

	fullBw      float64
	fullBwCount int

	cycleIdx   int
	cycleStamp time.Time

	hinted bool // startup goes on from a Hint (see hint)

	lostInRound, sentInRound int
	lossRate                 float64 // EWMA of per-round loss
	highRTTs                 int     // consecutive startup RTT samples showing a queue
	probeRound               int64   // round probe_bw began; loss is measured 2 rounds later

	pacingGain, cwndGain float64
}

// newModel starts a model with a first RTT estimate (from the QUIC
// handshake) and an optional rate hint in bytes/s ("careful resume": the
// last capacity known for this peer).
//
// Without a hint the model starts in startup from a 32-packet window per
// RTT; that first estimate leaves the max filter after one round. With a
// hint it starts cruising at the hint (probe_bw, gain 1), and the hint
// leaves the filter after three rounds: by then the delivery rate the link
// really gives has replaced it, so a stale hint costs at most three rounds.
func newModel(mss int, rtt time.Duration, hint, maxRate float64, now time.Time) *model {
	if rtt <= 0 {
		rtt = 100 * time.Millisecond
	}
	m := &model{mss: float64(mss), minRTT: rtt, minStamp: now, maxRate: maxRate}
	if hint > 0 {
		m.samples = []bwSample{{round: 3 - bwWindowRounds, bw: hint}}
		m.btlbw = hint
		m.enterProbeBW(now)
		return m
	}
	bw := initialCwndPkts * m.mss / rtt.Seconds()
	m.samples = []bwSample{{round: 1 - bwWindowRounds, bw: bw}}
	m.btlbw = bw
	m.enterStartup()
	return m
}

// hint takes a capacity estimate in bytes/s from outside the lane while
// the model is still in startup and knows less; the hint enters the max
// filter for three rounds, as a rate hint at creation does. If the lane
// has not sent yet (idle), the hint was measured on a quiet link and the
// model cruises at it, as with a hint at creation. Otherwise the estimate
// may be low (the lane's own startup shared the link with the probe), and
// startup goes on from it at a gain of 1.25 instead of 2.89, ending after
// the first round that does not grow 25 %: an accurate hint costs one
// round at 1.25 × the rate (a quarter BDP of queue), a low one still grows
// by a quarter a round rather than a quarter every eight rounds as in
// probe_bw.
//
// Only on long links (minimum RTT ≥ longLinkRTT): on shorter ones startup
// finds the rate in a fraction of a second, more exactly than a probe
// train (LTE's jitter made warm transfers vary from 0.84 to 0.95 of the
// link with the hint).
func (m *model) hint(bw float64, idle bool, now time.Time) bool {
	if m.state != stateStartup || m.hinted || bw <= m.btlbw || m.minRTT < longLinkRTT {
		return false
	}
	s := bwSample{round: m.round + 3 - bwWindowRounds, bw: bw}
	i := 0
	for i < len(m.samples) && m.samples[i].round <= s.round {
		i++
	}
	m.samples = append(m.samples[:i], append([]bwSample{s}, m.samples[i:]...)...)
	m.btlbw, m.fullBw, m.fullBwCount = bw, bw, 0
	m.hinted = true
	if idle {
		m.enterProbeBW(now)
		return true
	}
	m.pacingGain, m.cwndGain = hintedStartupGain, probeCwndGain
	return true
}

// fullPipeRounds is how many rounds without 25 % growth end startup.
func (m *model) fullPipeRounds() int {
	if m.hinted {
		return 1
	}
	return fullBwRounds
}

func (m *model) enterStartup() {
	m.state = stateStartup
	m.pacingGain, m.cwndGain = startupGain, startupGain
}

// bdp returns the estimated bandwidth-delay product in bytes.
func (m *model) bdp() float64 { return m.btlbw * m.minRTT.Seconds() }

// maxLossCompensation caps the loss rate the pacing rate makes up for, so
// that loss from an overflowing queue cannot feed itself.
const maxLossCompensation = 0.05

// pacingRate returns the current sending rate in bytes/s. The bottleneck
// estimate counts delivered bytes only, so under random loss p it reads
// (1-p) of the link; pacing divides by (1-p) to keep the link full.
func (m *model) pacingRate() float64 {
	r := m.pacingGain * m.btlbw / (1 - min(m.lossRate, maxLossCompensation))
	if m.maxRate > 0 && r > m.maxRate {
		r = m.maxRate
	}
	return math.Max(r, m.mss) // at least a packet a second
}

// cwnd returns the most bytes allowed in flight.
func (m *model) cwnd() float64 {
	w := m.cwndGain*m.bdp() + 3*m.mss
	return math.Max(w, minCwndPkts*m.mss)
}

// onSent counts a packet for the round's loss rate.
func (m *model) onSent() { m.sentInRound++ }

// onLost counts lost packets. In startup, a round that has already lost
// more than startupLossLimit of what it sent ends startup at once rather
// than at the round's end: on a long link waiting a round would send
// another round at up to 2.89 × the link rate into a full queue. On a
// shorter link only once a round went by without growth (lossEndsStartup).
func (m *model) onLost(n int) {
	m.lostInRound += n
	if m.state == stateStartup && m.roundLossy() && m.lossEndsStartup(m.fullBwCount == 0) {
		m.fullBwCount = fullBwRounds
		m.state = stateDrain
		m.pacingGain, m.cwndGain = drainGain, startupGain
	}
}

// roundLossy reports whether the round so far lost more than
// startupLossLimit of what it sent, and at least startupLossMin packets.
func (m *model) roundLossy() bool {
	return m.sentInRound > 0 && m.lostInRound >= startupLossMin &&
		float64(m.lostInRound) > startupLossLimit*float64(m.sentInRound)
}

// lossEndsStartup reports whether a lossy round ends startup. A queue that
// overflows at 2.89 × the rate also stops the delivery rate growing, so on
// links under longLinkRTT loss ends startup only without growth: a burst
// lost while the rate still grows (a receiver's buffer, a radio's fade;
// on a clean 20 Mbit/s, 20 ms link 20 packets of a round were lost at the
// receiving socket, docs/lane.md, "The receiving socket") would otherwise
// end it at the first rounds' rate, from which probe_bw grows by a quarter
// every eight rounds. On a long link it ends at once, as a round more into
// a full queue costs too much there (the RTT rise ends it too).
func (m *model) lossEndsStartup(growing bool) bool {
	return !growing || m.minRTT >= longLinkRTT
}

// queueSignal is how far above the minimum RTT samples must sit,
// startupQueueSamples times in a row and after a round without 25 %
// growth, for startup to conclude that a queue is building and the pipe is
// full (HyStart's delay increase, scaled for long links). Without it
// startup runs two more rounds at up to 2.89 × the link rate.
func queueSignal(minRTT time.Duration) time.Duration {
	return min(max(minRTT/8, 5*time.Millisecond), 50*time.Millisecond)
}

const startupQueueSamples = 8

// longLinkRTT is the minimum RTT from which startup ends on a queue signal
// alone and takes a Hint.
const longLinkRTT = 200 * time.Millisecond

// onRTT feeds one RTT sample.
func (m *model) onRTT(rtt time.Duration, now time.Time) {
	if rtt <= 0 {
		return
	}
	if m.state == stateStartup && m.minSet {
		if rtt > m.minRTT+queueSignal(m.minRTT) {
			m.highRTTs++
			// A queue alone may be noise (a busy receiver delays acks):
			// also require a round in which the rate stopped growing,
			// except on a long link, where 50 ms of queue in a row is no
			// scheduling noise and that round would overflow the queue
			// at up to 2.89 × the link rate.
			if m.highRTTs >= startupQueueSamples && (m.fullBwCount >= 1 || m.minRTT >= longLinkRTT) {
				m.fullBwCount = fullBwRounds
				m.state = stateDrain
				m.pacingGain, m.cwndGain = drainGain, startupGain
			}
		} else {
			m.highRTTs = 0
		}
	}
	if !m.minSet || rtt <= m.minRTT || now.Sub(m.minStamp) > minRTTWindow {
		m.minRTT, m.minStamp, m.minSet = rtt, now, true
	}
}

// onAck feeds a delivery-rate sample (bytes/s) taken from the packet whose
// acknowledgement arrived; pktDelivered is the delivered count when it was
// sent, delivered is the count now.
func (m *model) onAck(rate float64, appLimited bool, pktDelivered, delivered int64, inflight float64, now time.Time) {
	m.roundStart = false
	if pktDelivered >= m.nextRoundDelivery {
		m.nextRoundDelivery = delivered
		m.round++
		m.roundStart = true
	}
	if rate > 0 && (!appLimited || rate >= m.btlbw) {
		m.addSample(rate)
	}
	if m.roundStart {
		if m.sentInRound >= 10 && m.state == stateProbeBW && m.round > m.probeRound+2 {
			m.lossRate = 0.875*m.lossRate + 0.125*float64(m.lostInRound)/float64(m.sentInRound)
		}
		m.checkFullPipe()
		m.lostInRound, m.sentInRound = 0, 0
	}
	switch m.state {
	case stateStartup:
		if m.fullBwCount >= m.fullPipeRounds() {
			m.state = stateDrain
			m.pacingGain, m.cwndGain = drainGain, startupGain
		}
	case stateDrain:
		if inflight <= m.bdp() {
			m.enterProbeBW(now)
		}
	case stateProbeBW:
		m.advanceCycle(inflight, now)
	}
}

func (m *model) addSample(rate float64) {
	if n := len(m.samples); n > 0 && m.samples[n-1].round == m.round {
		if rate > m.samples[n-1].bw {
			m.samples[n-1].bw = rate
		}
	} else {
		m.samples = append(m.samples, bwSample{round: m.round, bw: rate})
	}
	cut := 0
	for cut < len(m.samples) && m.samples[cut].round <= m.round-bwWindowRounds {
		cut++
	}
	if cut >= len(m.samples) {
		cut = len(m.samples) - 1
	}
	if cut > 0 {
		m.samples = append(m.samples[:0], m.samples[cut:]...)
	}
	best := 0.0
	for _, s := range m.samples {
		best = math.Max(best, s.bw)
	}
	m.btlbw = best
}

func (m *model) checkFullPipe() {
	if m.state != stateStartup {
		return
	}
	grew := m.btlbw >= m.fullBw*fullBwGrowth
	if m.roundLossy() && m.lossEndsStartup(grew) {
		m.fullBwCount = fullBwRounds
		return
	}
	if grew {
		m.fullBw = m.btlbw
		m.fullBwCount = 0
		return
	}
	m.fullBwCount++
}

func (m *model) enterProbeBW(now time.Time) {
	m.state = stateProbeBW
	m.lossRate = 0 // startup's overshoot is not the link's loss rate
	m.probeRound = m.round
	m.cwndGain = probeCwndGain
	m.cycleIdx = 2 // start cruising: the queue was just drained
	m.cycleStamp = now
	m.pacingGain = probeGains[m.cycleIdx]
}

func (m *model) advanceCycle(inflight float64, now time.Time) {
	elapsed := now.Sub(m.cycleStamp) > m.minRTT
	next := elapsed
	switch probeGains[m.cycleIdx] {
	case 1.25:
		next = elapsed && inflight >= 1.25*m.bdp()
		if now.Sub(m.cycleStamp) > 2*m.minRTT {
			next = true // app-limited or lossy: do not probe forever
		}
	case 0.75:
		next = elapsed || inflight <= m.bdp()
	}
	if next {
		m.cycleIdx = (m.cycleIdx + 1) % len(probeGains)
		m.cycleStamp = now
		m.pacingGain = probeGains[m.cycleIdx]
	}
}
