package lane

import (
	"testing"
	"time"
)

// A hint from outside the lane (the link monitor's first probe) ends
// startup once, only while the model knows less, and sits in the max
// filter like a hint given at creation.
func TestModelHint(t *testing.T) {
	now := time.Now()
	m := newModel(1200, 600*time.Millisecond, 0, 0, now)
	if m.state != stateStartup {
		t.Fatalf("cold model in %s, want startup", m.state)
	}
	cold := m.btlbw
	if m.hint(cold/2, 0, now) {
		t.Fatal("a hint below the model's estimate was taken")
	}
	const bw = 250_000.0 // 2 Mbit/s
	busy := newModel(1200, 600*time.Millisecond, 0, 0, now)
	if !busy.hint(bw, 2*bw*0.6, now) || busy.state != stateDrain {
		t.Fatalf("a hint with two BDPs in flight: %s, want drain", busy.state)
	}
	if !m.hint(bw, 0, now) {
		t.Fatal("a hint above a cold model's estimate was not taken")
	}
	if m.state != stateProbeBW || m.btlbw != bw {
		t.Fatalf("after the hint with nothing in flight: %s at %.0f B/s, want probe_bw at %.0f", m.state, m.btlbw, bw)
	}
	for i := 1; i < len(m.samples); i++ {
		if m.samples[i].round < m.samples[i-1].round {
			t.Fatalf("samples out of round order: %+v", m.samples)
		}
	}
	if m.hint(2*bw, 0, now) {
		t.Fatal("a second hint was taken after startup ended")
	}
	// The hint leaves the filter after three rounds of lower delivery.
	var delivered int64
	for range 4 {
		delivered += 1000
		m.onAck(bw/2, false, delivered, delivered, 0, now)
	}
	if m.btlbw != bw/2 {
		t.Fatalf("after 4 rounds at half the hint the estimate is %.0f B/s, want %.0f", m.btlbw, bw/2)
	}
}
