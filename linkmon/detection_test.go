package linkmon

import (
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// TestDetectionSamples bounds how many light samples the classifier needs
// for each kind of transition. At 250 ms a sample, 8 samples are 2 s: the
// classifier's share of the 2 s median detection goal of
// docs/design.md#goals (the prober's
// timeout comes on top for outages).
func TestDetectionSamples(t *testing.T) {
	ms := time.Millisecond
	type phase struct {
		bw    float64
		rtt   time.Duration
		stale bool
	}
	cases := []struct {
		name     string
		from, to phase
		want     edgesync.LinkClass
		max      int
	}{
		{"to slower (rtt)", phase{50e6, 20 * ms, false}, phase{50e6, 120 * ms, false}, edgesync.Mobile, 7},
		{"to slower (bandwidth)", phase{50e6, 20 * ms, false}, phase{0.5e6, 20 * ms, false}, edgesync.Satellite, 7},
		{"to faster", phase{3e6, 100 * ms, false}, phase{50e6, 20 * ms, false}, edgesync.Broadband, 7},
		{"to satellite rtt", phase{5e6, 100 * ms, false}, phase{5e6, 600 * ms, false}, edgesync.Satellite, 7},
		{"to outage", phase{50e6, 20 * ms, false}, phase{stale: true}, edgesync.Intermittent, 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t, DefaultClassifierConfig())
			for range 40 {
				f.feed(tc.from.bw, tc.from.rtt, 0)
			}
			before := f.st.Class
			n := 0
			for f.st.Class == before && n < 100 {
				n++
				if tc.to.stale {
					f.stale()
				} else {
					f.feed(tc.to.bw, tc.to.rtt, 0)
				}
			}
			if f.st.Class != tc.want || n > tc.max {
				t.Fatalf("%v -> %v after %d samples, want %v within %d", before, f.st.Class, n, tc.want, tc.max)
			}
			t.Logf("%v -> %v after %d samples (%v)", before, f.st.Class, n, time.Duration(n)*step)
			if tc.to.stale { // and recovery: MinSamples answered samples
				r := 0
				for f.st.Class == edgesync.Intermittent && r < 100 {
					r++
					f.feed(tc.from.bw, tc.from.rtt, 0)
				}
				if f.st.Class != before || r != 3 {
					t.Fatalf("recovery to %v after %d samples, want %v after 3", f.st.Class, r, before)
				}
			}
		})
	}
}

// BenchmarkObserve measures one Observe with a full window (4 samples a
// second) and reports it as a share of the 250 ms sample interval: the CPU
// one endpoint's classifier takes.
func BenchmarkObserve(b *testing.B) {
	c, err := NewClassifier(DefaultClassifierConfig())
	if err != nil {
		b.Fatal(err)
	}
	at := t0
	for i := range 200 {
		at = at.Add(step)
		c.Observe(Measurement{BandwidthBps: 50e6 + float64(i%7)*1e6, RTT: 20 * time.Millisecond, Loss: 0.01, At: at, Method: MethodActive})
	}
	i := 0
	start := time.Now()
	for b.Loop() {
		at = at.Add(step)
		i++
		c.Observe(Measurement{BandwidthBps: 50e6 + float64(i%7)*1e6, RTT: time.Duration(18+i%5) * time.Millisecond, Loss: 0.01, At: at, Method: MethodActive})
	}
	per := time.Since(start) / time.Duration(max(i, 1))
	b.ReportMetric(float64(per)/float64(step), "share-of-interval")
}
