package linkmon

import (
	"math"
	"sync"
	"testing"
	"time"
)

// train builds a train of n packets of size bytes crossing a link of bps,
// with the listed packets lost.
func train(n, size int, bps float64, lost ...int) ([]int, []time.Time) {
	sizes := make([]int, n)
	arr := make([]time.Time, n)
	gap := time.Duration(float64(size) * 8 / bps * float64(time.Second))
	for i := range n {
		sizes[i] = size
		arr[i] = t0.Add(time.Duration(i) * gap)
	}
	for _, i := range lost {
		arr[i] = time.Time{}
	}
	return sizes, arr
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*b }

func TestTrainEstimate(t *testing.T) {
	sizes, arr := train(20, 1200, 10e6)
	if bps, ok := TrainEstimate(sizes, arr); !ok || !near(bps, 10e6, 0.001) {
		t.Fatalf("clean train: %v %v, want 10 Mbit/s", bps, ok)
	}
	// Losing middle packets (dropped at the queue, no time taken) keeps the
	// arrivals' spacing of the survivors: modelled as a train of survivors.
	sizes, arr = train(20, 1200, 10e6)
	arr[5], arr[6] = time.Time{}, time.Time{}
	for i := 7; i < 20; i++ {
		arr[i] = arr[i].Add(-2 * 960 * time.Microsecond)
	}
	if bps, ok := TrainEstimate(sizes, arr); !ok || !near(bps, 10e6, 0.001) {
		t.Fatalf("train with 2 lost: %v %v, want 10 Mbit/s", bps, ok)
	}
	// Losing the first packet: the next arrival is the start.
	sizes, arr = train(20, 1200, 50e6, 0)
	if bps, ok := TrainEstimate(sizes, arr); !ok || !near(bps, 50e6, 0.001) {
		t.Fatalf("train without its first packet: %v %v", bps, ok)
	}
	// Reordered arrivals give the same answer.
	sizes, arr = train(10, 1200, 5e6)
	arr[3], arr[7] = arr[7], arr[3]
	if bps, ok := TrainEstimate(sizes, arr); !ok || !near(bps, 5e6, 0.001) {
		t.Fatalf("reordered train: %v %v", bps, ok)
	}
	refuse := map[string]func() ([]int, []time.Time){
		"more than half lost": func() ([]int, []time.Time) { return train(10, 1200, 1e6, 0, 1, 2, 3, 4, 5) },
		"one packet":          func() ([]int, []time.Time) { return train(1, 1200, 1e6) },
		"mismatched":          func() ([]int, []time.Time) { s, a := train(5, 1200, 1e6); return s, a[:4] },
		"no spread": func() ([]int, []time.Time) {
			s, a := train(5, 1200, 1e6)
			for i := range a {
				a[i] = t0
			}
			return s, a
		},
	}
	for name, f := range refuse {
		if bps, ok := TrainEstimate(f()); ok {
			t.Errorf("%s: accepted with %v", name, bps)
		}
	}
}

func TestMedianEstimate(t *testing.T) {
	if m, ok := MedianEstimate([]float64{9e6, 0, 11e6, 10e6, math.Inf(1), 100e6}); !ok || m != 10.5e6 {
		t.Fatalf("median = %v %v, want 10.5e6 (zero and Inf ignored)", m, ok)
	}
	if _, ok := MedianEstimate([]float64{0, -1}); ok {
		t.Fatalf("no usable estimate accepted")
	}
}

func TestSummarizePings(t *testing.T) {
	ms := time.Millisecond
	rtt, jit, loss, ok := SummarizePings([]time.Duration{40 * ms, 44 * ms, 40 * ms, 46 * ms}, 5)
	if !ok || rtt != 42*ms || jit != 14*ms/3 || !near(loss, 0.2, 1e-9) {
		t.Fatalf("got %v %v %v %v", rtt, jit, loss, ok)
	}
	if _, _, loss, ok := SummarizePings(nil, 4); ok || loss != 1 {
		t.Fatalf("all lost: loss %v ok %v, want 1 and not ok", loss, ok)
	}
}

func TestPassiveEstimator(t *testing.T) {
	var p PassiveEstimator
	// quic-go's reading before any RTT sample is ignored.
	if _, ok := p.Observe(ConnSample{At: t0, SmoothedRTT: QUICInitialRTT}); ok {
		t.Fatalf("initial 100 ms reading accepted")
	}
	s := ConnSample{At: t0.Add(time.Second), SmoothedRTT: 40 * time.Millisecond, MeanDeviation: 5 * time.Millisecond,
		BytesSent: 1_000_000, BytesLost: 10_000, BytesAcked: 1_250_000}
	m, ok := p.Observe(s)
	if !ok || m.RTT != 40*time.Millisecond || m.Jitter != 5*time.Millisecond || m.Method != MethodPassive {
		t.Fatalf("first real sample: %v %v", m, ok)
	}
	if !near(m.BandwidthBps, 10e6, 1e-9) || m.BandwidthLowerBound || !near(m.Loss, 0.01, 1e-9) {
		t.Fatalf("delivery rate %v (want 10 Mbit/s), loss %v (want 1 %%)", m.BandwidthBps, m.Loss)
	}
	// Too few bytes sent for a new loss figure: the old one is repeated.
	s.At = s.At.Add(time.Second)
	s.BytesSent += 1000
	s.BytesLost += 1000
	s.BytesAcked += 125_000
	s.AppLimited = true
	m, _ = p.Observe(s)
	if !near(m.Loss, 0.01, 1e-9) || !m.BandwidthLowerBound || !near(m.BandwidthBps, 1e6, 1e-9) {
		t.Fatalf("app-limited quiet second: %v", m)
	}
	// Once enough is sent, the loss covers the whole span since.
	s.At = s.At.Add(time.Second)
	s.BytesSent += 99_000
	s.BytesLost += 4000
	m, _ = p.Observe(s)
	if !near(m.Loss, 0.05, 1e-9) || m.BandwidthBps != 0 {
		t.Fatalf("loss over the span: %v, want 5 %% and no rate", m)
	}
	// Counters going backwards (a new connection) restart the estimator.
	m, ok = p.Observe(ConnSample{At: s.At.Add(time.Second), SmoothedRTT: 30 * time.Millisecond, MeanDeviation: time.Millisecond, BytesSent: 10})
	if !ok || m.Loss != 0 || m.BandwidthBps != 0 || m.RTT != 30*time.Millisecond {
		t.Fatalf("after reset: %v", m)
	}
}

func TestDeliveryMeterConcurrent(t *testing.T) {
	var d DeliveryMeter
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				d.OnAcked(1200)
			}
			d.OnAppLimited()
		})
	}
	wg.Wait()
	if acked, lim := d.Snapshot(); acked != 4*1000*1200 || !lim {
		t.Fatalf("snapshot %d %v", acked, lim)
	}
	if _, lim := d.Snapshot(); lim {
		t.Fatalf("app-limited flag not cleared by Snapshot")
	}
}

func TestCombine(t *testing.T) {
	act := Measurement{BandwidthBps: 8e6, RTT: 40 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.02, At: t0, Method: MethodActive}
	full := Measurement{BandwidthBps: 9.5e6, RTT: 55 * time.Millisecond, Loss: 0.01, At: t0.Add(time.Second), Method: MethodPassive}
	m := Combine(act, full)
	if m.BandwidthBps != 9.5e6 || m.BandwidthLowerBound || m.RTT != 40*time.Millisecond || m.Loss != 0.01 || m.Method != MethodBoth || !m.At.Equal(full.At) {
		t.Fatalf("link-filling passive: %v", m)
	}
	low := full
	low.BandwidthBps, low.BandwidthLowerBound = 1e6, true
	if m := Combine(act, low); m.BandwidthBps != 8e6 || m.BandwidthLowerBound {
		t.Fatalf("low lower bound replaced the active capacity: %v", m)
	}
	high := low
	high.BandwidthBps = 20e6
	if m := Combine(act, high); m.BandwidthBps != 20e6 {
		t.Fatalf("higher lower bound did not raise: %v", m)
	}
	if m := Combine(act, Measurement{}); m != act {
		t.Fatalf("missing passive: %v", m)
	}
	st := act
	st.Stale = true
	if m := Combine(st, full); m != full {
		t.Fatalf("stale active with passive: %v", m)
	}
}
