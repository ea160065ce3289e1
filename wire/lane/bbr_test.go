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
