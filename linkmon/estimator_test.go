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
	// Too few bytes sent for a new loss figure: the old one is repeated
	// (for as long as its span took).
	s.At = s.At.Add(250 * time.Millisecond)
	s.BytesSent += 1000
	s.BytesLost += 1000
	s.BytesAcked += 125_000
	s.AppLimited = true
	m, _ = p.Observe(s)
	if !near(m.Loss, 0.01, 1e-9) || !m.BandwidthLowerBound || !near(m.BandwidthBps, 4e6, 1e-9) {
		t.Fatalf("app-limited quiet 250 ms: %v", m)
	}
	// Once enough is sent, the loss covers the whole span since (within
	// MaxLossSpan).
	s.At = s.At.Add(250 * time.Millisecond)
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

// acks feeds a meter one acknowledgement of size bytes every gap from
// start, n of them, and returns the time of the last.
func acks(d *DeliveryMeter, start time.Time, gap time.Duration, n, size int) time.Time {
	at := start
	for i := range n {
		at = start.Add(time.Duration(i) * gap)
		d.ackedAt(size, at)
	}
	return at
}

func TestDeliveryMeterRate(t *testing.T) {
	ms := time.Millisecond
	win, rtt := 250*ms, 20*ms
	// 10 Mbit/s: 12.5 kB acknowledged every 10 ms.
	var d DeliveryMeter
	last := acks(&d, t0, 10*ms, 100, 12_500)
	r := d.Rate(last.Add(5*ms), win, rtt)
	if !near(r.Bps, 10e6, 0.001) || r.AppLimited || r.Acks < 20 {
		t.Fatalf("steady 10 Mbit/s: %+v", r)
	}
	// The rate drops to 2 Mbit/s: a window later it reads the new rate.
	last = acks(&d, last.Add(50*ms), 50*ms, 6, 12_500)
	if r := d.Rate(last, win, rtt); !near(r.Bps, 2e6, 0.001) || r.AppLimited {
		t.Fatalf("after the drop to 2 Mbit/s: %+v", r)
	}
	// Acknowledgements in clumps (two at once every 20 ms) read the same.
	var c DeliveryMeter
	for i := range 50 {
		at := t0.Add(time.Duration(i) * 20 * ms)
		c.ackedAt(12_500, at)
		c.ackedAt(12_500, at)
	}
	if r := c.Rate(t0.Add(990*ms), win, rtt); !near(r.Bps, 10e6, 0.06) {
		t.Fatalf("clumped acknowledgements: %+v, want about 10 Mbit/s", r)
	}
	// A slow link: one acknowledgement per 100 ms (1 Mbit/s); the window
	// reaches back for minAckEvents of them.
	var s DeliveryMeter
	last = acks(&s, t0, 100*ms, 20, 12_500)
	if r := s.Rate(last.Add(10*ms), win, rtt); !near(r.Bps, 1e6, 0.001) || r.Acks != minAckEvents {
		t.Fatalf("1 Mbit/s: %+v", r)
	}
	// Leading silence does not dilute the rate: the sender started 100 ms
	// into the window.
	var l DeliveryMeter
	last = acks(&l, t0, 10*ms, 11, 12_500)
	if r := l.Rate(last.Add(150*ms), win, rtt); !near(r.Bps, 10e6, 0.001) {
		t.Fatalf("burst after silence: %+v", r)
	}
	// Nothing acknowledged within the window: no rate.
	if r := l.Rate(last.Add(win+ms), win, rtt); r.Bps != 0 {
		t.Fatalf("silent window: %+v", r)
	}
	// A burst far shorter than the window: no rate.
	var b DeliveryMeter
	last = acks(&b, t0, ms, 5, 1200)
	if r := b.Rate(last, win, rtt); r.Bps != 0 {
		t.Fatalf("5 ms burst: %+v", r)
	}
	// App-limited: a moment within one RTT before the first acknowledgement
	// of the span (when its bytes were sent) or after it makes a lower bound;
	// one older than that does not.
	var a DeliveryMeter
	a.appLimitedAt(t0.Add(-rtt - appLimitedSlack - ms))
	last = acks(&a, t0, 10*ms, 30, 12_500)
	if r := a.Rate(last, win, rtt); r.AppLimited {
		t.Fatalf("app-limited long before the span: %+v", r)
	}
	a.appLimitedAt(last.Add(-win + 10*ms))
	if r := a.Rate(last, win, rtt); !r.AppLimited || !near(r.Bps, 10e6, 0.001) {
		t.Fatalf("app-limited within the span: %+v", r)
	}
}

func TestPassiveEstimatorDeliveryRate(t *testing.T) {
	var p PassiveEstimator
	s := ConnSample{At: t0, SmoothedRTT: 40 * time.Millisecond, MeanDeviation: time.Millisecond, BytesAcked: 1000,
		Delivery: DeliveryRate{Bps: 8e6, Span: 200 * time.Millisecond, Acks: 20}}
	m, ok := p.Observe(s)
	if !ok || m.BandwidthBps != 8e6 || m.BandwidthLowerBound {
		t.Fatalf("first sample with a delivery rate: %v %v", m, ok)
	}
	// The delivery rate is used instead of ΔBytesAcked/Δt.
	s.At = s.At.Add(time.Second)
	s.BytesAcked += 125_000 // would read 1 Mbit/s
	s.Delivery = DeliveryRate{Bps: 6e6, Span: 200 * time.Millisecond, Acks: 20, AppLimited: true}
	if m, _ := p.Observe(s); m.BandwidthBps != 6e6 || !m.BandwidthLowerBound {
		t.Fatalf("delivery rate, app-limited: %v", m)
	}
}

func TestCheckPackets(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		bps    float64
		jitter time.Duration
		want   int
	}{
		{0, 0, 0},                   // capacity unknown: no check
		{100e6, 0, 12},              // 1 ms at 100 Mbit/s: 12.5 kB, 11 gaps
		{20e6, 0, 4},                // 2.5 kB: 3 gaps
		{1e6, 0, minCheckPackets},   // the shortest train
		{100e6, 3 * ms, 17},         // 1.5 ms: half the jitter
		{100e6, 50 * ms, 22},        // at most maxCheckDispersion
		{100e9, 0, maxTrainPackets}, // capped
	}
	for _, c := range cases {
		if got := checkPackets(c.bps, c.jitter); got != c.want {
			t.Errorf("checkPackets(%s, %v) = %d, want %d", FormatBps(c.bps), c.jitter, got, c.want)
		}
	}
}
