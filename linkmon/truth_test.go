package linkmon

import (
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// Figures under load (docs/linkmon.md, "Under the agent's own load"): what
// the monitor reports while the agent's own traffic flows, during an outage
// and after it.

// A link-filling sender's acknowledgements come in clumps (an ACK frame
// per few packets, a round of them per RTT on a long path). Whatever the
// moment of the sample, the delivery rate must not read the clump's burst
// rate: on a 2 Mbit/s, 600 ms satellite uplink it read 3.4 Mbit/s.
func TestDeliveryRateOfClumpedAcksNotInflated(t *testing.T) {
	ms := time.Millisecond
	const size = 12_500
	for _, tc := range []struct {
		name   string
		rtt    time.Duration
		period time.Duration // of the clumps
	}{{"satellite", 600 * ms, 100 * ms}, {"fiber", 10 * ms, 10 * ms}} {
		truth := 4 * size * 8 / tc.period.Seconds()
		var sum float64
		var n int
		for phase := 0 * ms; phase < 20; phase++ { // every moment of a period
			now := t0.Add(3*time.Second + time.Duration(phase)*tc.period/20)
			var d DeliveryMeter // 3 s of clumps up to now: 4 acks within 3/10 of a period
			for i := range int(3*time.Second/tc.period) + 1 {
				for j := range 4 {
					if at := t0.Add(time.Duration(i)*tc.period + time.Duration(j)*tc.period/10); !at.After(now) {
						d.ackedAt(size, at)
					}
				}
			}
			r := d.Rate(now, 250*ms, tc.rtt)
			if r.Bps == 0 {
				continue
			}
			if r.Bps > 1.15*truth || r.Bps < 0.7*truth {
				t.Errorf("%s: at +%d/20 of a period the rate reads %s, want %s within -30 %%..+15 %%", tc.name, phase, FormatBps(r.Bps), FormatBps(truth))
			}
			sum += r.Bps
			n++
		}
		if n < 10 {
			t.Fatalf("%s: only %d of 20 moments gave a rate", tc.name, n)
		}
		if mean := sum / float64(n); !near(mean, truth, 0.08) {
			t.Errorf("%s: mean rate %s, want %s within 8 %%", tc.name, FormatBps(mean), FormatBps(truth))
		}
	}
}

// While the link is out (nothing answered) its loss is 100 %, not the
// last figure before the cut (status said 0.0 % for 20 s after the link
// emulator was killed); once it is back, the loss is the new link's.
func TestOutageShowsFullLossThenTheNewLinks(t *testing.T) {
	f := newFeeder(t, DefaultClassifierConfig())
	f.settle(12, 50e6, 20*time.Millisecond, edgesync.Broadband)
	for range 12 {
		f.stale()
	}
	if f.st.Class != edgesync.Intermittent || f.st.Median.Loss != 1 {
		t.Fatalf("3 s out: class %s, loss %.1f%%; want intermittent at 100%%", f.st.Class, f.st.Median.Loss*100)
	}
	for range 6 {
		f.feed(10e6, 20*time.Millisecond, 0.001)
	}
	if f.st.Median.Loss > 0.002 {
		t.Fatalf("1.5 s after the link came back at 0.1 %%: loss %.1f%%", f.st.Median.Loss*100)
	}
}

// After an outage QUIC declares what it sent into it lost in the first
// round trips; that is not the new link's loss.
func TestPassiveLossAfterOutageIsTheNewLinks(t *testing.T) {
	p := AfterOutage(t0, time.Second)
	s := ConnSample{At: t0, SmoothedRTT: 20 * time.Millisecond, MeanDeviation: time.Millisecond}
	for i := range 20 { // 250 ms apart; the outage's 200 kB are declared lost in the first 500 ms
		s.At = s.At.Add(250 * time.Millisecond)
		s.BytesSent += 50_000
		if i < 2 {
			s.BytesLost += 100_000
		} else if i%10 == 0 {
			s.BytesLost += 50 // 0.1 %
		}
		m, ok := p.Observe(s)
		if !ok {
			t.Fatalf("sample %d not usable", i)
		}
		if m.Loss > 0.01 {
			t.Fatalf("%v after the return: loss %.1f%%, want the new link's 0.1 %%", s.At.Sub(t0), m.Loss*100)
		}
	}
}
