package lane

import (
	"testing"
	"time"
)

// A hint from outside the lane (the link monitor's first probe) is taken
// once, only in startup and only above the model's own estimate. On a lane
// that has sent already, startup goes on from it at a gain of 1.25 and
// ends after one round without 25 % growth; on an idle one the model
// cruises at it.
func TestModelHint(t *testing.T) {
	now := time.Now()
	m := newModel(1200, 600*time.Millisecond, 0, 0, now)
	if m.state != stateStartup {
		t.Fatalf("cold model in %s, want startup", m.state)
	}
	if m.hint(m.btlbw/2, false, now) {
		t.Fatal("a hint below the model's estimate was taken")
	}
	const bw = 250_000.0 // 2 Mbit/s
	if !m.hint(bw, false, now) {
		t.Fatal("a hint above a cold model's estimate was not taken")
	}
	if m.state != stateStartup || m.btlbw != bw || m.pacingGain != hintedStartupGain {
		t.Fatalf("after the hint: %s at %.0f B/s, gain %.2f; want startup at %.0f, gain %.2f",
			m.state, m.btlbw, m.pacingGain, bw, hintedStartupGain)
	}
	for i := 1; i < len(m.samples); i++ {
		if m.samples[i].round < m.samples[i-1].round {
			t.Fatalf("samples out of round order: %+v", m.samples)
		}
	}
	if m.hint(2*bw, false, now) {
		t.Fatal("a second hint was taken")
	}
	// A round that delivers the hint's rate (no growth) ends startup.
	var delivered int64
	for range 3 {
		delivered += 1000
		m.onAck(bw, false, delivered, delivered, 0, now)
	}
	if m.state == stateStartup {
		t.Fatalf("still in startup after rounds without growth; rounds %d, full-bw count %d", m.round, m.fullBwCount)
	}
	// The hint leaves the filter after three rounds of lower delivery.
	for range 12 {
		delivered += 1000
		m.onAck(bw/2, false, delivered, delivered, 0, now)
	}
	if m.btlbw != bw/2 {
		t.Fatalf("after rounds at half the hint the estimate is %.0f B/s, want %.0f", m.btlbw, bw/2)
	}

	// Growth beyond an estimate measured low keeps startup going.
	g := newModel(1200, 600*time.Millisecond, 0, 0, now)
	g.hint(bw, false, now)
	delivered = 0
	for _, rate := range []float64{1.3 * bw, 1.3 * 1.3 * bw} {
		delivered += 1000
		g.onAck(rate, false, delivered, delivered, 0, now)
	}
	if g.state != stateStartup {
		t.Fatalf("a hinted startup whose rate grows 30 %% a round left startup (%s)", g.state)
	}

	short := newModel(1200, 100*time.Millisecond, 0, 0, now)
	if short.hint(bw, true, now) {
		t.Fatal("a hint on a 100 ms link was taken; startup finds the rate there")
	}

	idle := newModel(1200, 600*time.Millisecond, 0, 0, now)
	if !idle.hint(bw, true, now) || idle.state != stateProbeBW || idle.btlbw != bw {
		t.Fatalf("a hint to an idle lane: %s at %.0f B/s, want probe_bw at %.0f", idle.state, idle.btlbw, bw)
	}
}

// On a clean 20 Mbit/s, 20 ms link a burst of 20 packets lost early in
// startup (a receiver's queue overflowing, not the link's) ended startup,
// and the lane cruised at the first round's rate, 0.8 Mbit/s in one run,
// growing back by a quarter every eight rounds. On a short link startup
// ends on loss only once the delivery rate stopped growing; on a long one
// at once, as before (another round at 2.89 × the rate would overflow the
// queue).
func TestStartupBurstLoss(t *testing.T) {
	now := time.Now()
	const mss = 1280
	m := newModel(mss, 20*time.Millisecond, 0, 0, now)
	m.onRTT(20*time.Millisecond, now)
	rate := m.btlbw
	var delivered int64
	round := func(lost int) {
		for range 40 {
			m.onSent()
		}
		m.onLost(lost)
		delivered += 40 * mss
		m.onAck(rate, false, delivered, delivered, 0, now)
	}
	round(20) // a burst lost while the rate grows
	if m.state != stateStartup {
		t.Fatalf("a burst lost in a round of growth ended startup on a 20 ms link (%s at %.1f Mbit/s)", m.state, m.btlbw*8/1e6)
	}
	for range 3 { // the rate doubles: startup goes on
		rate *= 2
		round(0)
	}
	if m.state != stateStartup {
		t.Fatalf("startup ended while the rate doubled (%s)", m.state)
	}
	round(0)  // the pipe is full: no growth
	round(20) // and the queue overflows
	if m.state == stateStartup {
		t.Fatalf("startup goes on after a round without growth that lost half its packets")
	}
	if m.btlbw < rate {
		t.Fatalf("startup ended at %.1f Mbit/s, below the %.1f Mbit/s delivered", m.btlbw*8/1e6, rate*8/1e6)
	}

	long := newModel(mss, 600*time.Millisecond, 0, 0, now)
	long.onRTT(600*time.Millisecond, now)
	for range 40 {
		long.onSent()
	}
	long.onLost(20)
	if long.state == stateStartup {
		t.Fatal("on a 600 ms link startup goes on after losing half a round")
	}
}

// The window never falls below what makes the receiver answer on count
// (feedbackEvery packets) rather than after maxAckDelay: a model whose
// estimate collapsed on a short link (2 Mbit/s at 85 µs, after the lane
// starved for a moment) must still let a feedback's worth of packets out,
// or every ack waits maxAckDelay, every delivery-rate sample reads the
// window per maxAckDelay and the estimate stays where it fell
// (TestMaximalChunkArrives in agent stalled at 2 Mbit/s on loopback).
func TestCwndFloorElicitsFeedback(t *testing.T) {
	const mss = 1280
	m := newModel(mss, 85*time.Microsecond, 250_000, 0, time.Now())
	if got, want := m.cwnd(), float64(feedbackEvery*mss); got < want {
		t.Fatalf("window %.0f bytes at %.0f B/s and %s: below the %d packets (%.0f bytes) the receiver acknowledges at once",
			got, m.btlbw, m.minRTT, feedbackEvery, want)
	}
	// The rate such a window caps the lane at when every ack waits
	// maxAckDelay must be above the collapsed estimate, so a probe can
	// raise it.
	if capped := m.cwnd() / maxAckDelay.Seconds(); capped <= probeGains[0]*m.btlbw {
		t.Fatalf("window %.0f bytes per %s of ack delay is %.0f B/s: no room to probe above %.0f B/s", m.cwnd(), maxAckDelay, capped, m.btlbw)
	}
}
