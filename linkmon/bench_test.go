package linkmon

import (
	"context"
	"math"
	"sync"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/wire"
)

// Benchmarks of the monitor over real QUIC through linksim. Run with
//
//	go test -run '^$' -bench . -benchtime 1x ./linkmon/
//
// Each iteration repeats its measurement at least 10 times.

// percentile is testutil.Percentile.
func percentile(v []float64, p float64) float64 { return testutil.Percentile(v, p) }

// BenchmarkDetection times each kind of transition, from the linksim
// profile switch to the LinkClassChanged event, over 10 cycles: to a
// slower link (RTT and bandwidth), to a faster one, to a slower one by
// bandwidth alone (100 to 5 Mbit/s at the same 20 ms: pings cannot see
// it), to an outage, and the recovery from it (first class, and the right
// class: the link comes back at 100 Mbit/s after going down at 5).
func BenchmarkDetection(b *testing.B) {
	slowBW := linksim.Broadband()
	slowBW.Name = "broadband-5M"
	slowBW.Down.RateBps = 5e6 // 5 Mbit/s at 20 ms: mobile by bandwidth alone
	type step struct {
		kind string
		from edgesync.LinkClass // the class the transition starts from
		p    linksim.Profile
		want func(edgesync.LinkClass) bool
	}
	cycle := []step{
		{"to-slower", edgesync.Broadband, linksim.LTE(), is(edgesync.Mobile)},
		{"to-faster", edgesync.Mobile, linksim.Broadband(), is(edgesync.Broadband)},
		{"to-slower-bw", edgesync.Broadband, slowBW, is(edgesync.Mobile)},
		{"to-outage", edgesync.Mobile, down(linksim.Broadband()), is(edgesync.Intermittent)},
		{"recovery", edgesync.Intermittent, linksim.Broadband(), isNot(edgesync.Intermittent)},
	}
	for b.Loop() {
		core := newTestCore(b)
		a := dialTestAgent(b, core, linksim.Broadband(), 61)
		m := startMonitor(b, testConfig(), nil, MonitorOptions{Name: "detect"})
		events, cancel := m.Subscribe()
		if err := m.Attach(a.conn, a.tr, a.session); err != nil {
			b.Fatal(err)
		}
		took := map[string][]float64{}
		misses := map[string]int{}
		skipped := map[string]int{}
		for c := range 10 {
			for _, s := range cycle {
				// Measure a transition only from its starting class: a
				// link that has not settled yet is no transition.
				if m.Status().Class != s.from {
					waitClass(b, events, 15*time.Second, is(s.from))
				}
				if m.Status().Class != s.from {
					skipped[s.kind]++
					b.Logf("cycle %d %s: skipped, class %v, want %v", c, s.kind, m.Status().Class, s.from)
					continue
				}
				time.Sleep(time.Second) // the new class holds a while: part of the scenario, not a sync
				for len(events) > 0 {
					<-events
				}
				a.setProfile(b, s.p)
				switched := time.Now()
				ev, d, ok := waitClass(b, events, 10*time.Second, s.want)
				if !ok {
					misses[s.kind]++
					d = 10 * time.Second
					b.Logf("cycle %d %s: missed; status %+v", c, s.kind, m.Status())
				} else if c == 0 {
					b.Logf("%s: %v in %v: %s", s.kind, ev.Change.New, d.Round(time.Millisecond), ev.Change.Reason)
				}
				took[s.kind] = append(took[s.kind], d.Seconds())
				if s.kind == "recovery" {
					// The link came back faster than it went down: until the
					// capacity is measured again the class rests on the old
					// figure. Time the right class too.
					d := time.Since(switched)
					if ok && ev.Change.New != edgesync.Broadband {
						_, _, ok = waitClass(b, events, 10*time.Second-d, is(edgesync.Broadband))
						d = time.Since(switched)
					}
					if !ok {
						misses["recovery-class"]++
						d = 10 * time.Second
					}
					took["recovery-class"] = append(took["recovery-class"], d.Seconds())
				}
			}
		}
		cancel()
		for _, s := range append(cycle, step{kind: "recovery-class"}) {
			v := took[s.kind]
			b.ReportMetric(percentile(v, 0.5), "p50-detect-s-"+s.kind)
			b.ReportMetric(percentile(v, 0.95), "p95-detect-s-"+s.kind)
			b.ReportMetric(float64(misses[s.kind]), "missed-"+s.kind)
			b.ReportMetric(float64(skipped[s.kind]), "skipped-"+s.kind)
		}
	}
}

// estimateProfiles are measured for BenchmarkEstimate and
// BenchmarkProbeOverhead.
func estimateProfiles() []linksim.Profile {
	return []linksim.Profile{linksim.Fiber(), linksim.Broadband(), linksim.DSL(), linksim.LTE(),
		linksim.SatelliteGEO(), linksim.SatelliteGEOLossy(), linksim.VeryBad()}
}

// BenchmarkEstimate reports the bandwidth estimate's error against the
// configured rate, over 10 on-demand measurements per profile (a larger
// budget lets them run back to back; it does not change the trains).
func BenchmarkEstimate(b *testing.B) {
	for _, p := range estimateProfiles() {
		b.Run(p.Name, func(b *testing.B) {
			for b.Loop() {
				core := newTestCore(b)
				a := dialTestAgent(b, core, p, 71)
				cfg := testConfig()
				cfg.Budget.Fraction = 0.5
				m := startMonitor(b, cfg, a, MonitorOptions{Name: p.Name})
				waitEstimates(b, m, 2, 30*time.Second)
				var errs, ests []float64
				failed := 0
				for range 10 {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					meas, err := m.Measure(ctx)
					cancel()
					if err != nil {
						b.Logf("measure: %v", err)
						failed++
						continue
					}
					ests = append(ests, meas.BandwidthBps)
					errs = append(errs, 100*math.Abs(meas.BandwidthBps-float64(p.Down.RateBps))/float64(p.Down.RateBps))
				}
				b.ReportMetric(percentile(errs, 0.5), "err-pct")
				b.ReportMetric(percentile(errs, 0.9), "p90-err-pct")
				b.ReportMetric(percentile(ests, 0.5)/1e6, "est-Mbps")
				b.ReportMetric(float64(failed), "failed-of-10")
			}
		})
	}
}

// BenchmarkProbeOverhead runs an idle agent per profile, all at once, and
// reports the monitor's probe bytes (trains, pings and their
// acknowledgements) as a share of the configured uplink capacity over a
// minute after a 10 s warm-up, and the share of everything the idle agent
// sent (QUIC keep-alives included). Each minute is 10 windows of 6 s; the
// worst window is reported too.
func BenchmarkProbeOverhead(b *testing.B) {
	for b.Loop() {
		core := newTestCore(b)
		type run struct {
			p      linksim.Profile
			a      *testAgent
			m      *Monitor
			probe  []int64
			uplink []uint64
		}
		var runs []*run
		for i, p := range estimateProfiles() {
			a := dialTestAgent(b, core, p, uint64(81+i))
			m := startMonitor(b, testConfig(), a, MonitorOptions{Name: p.Name})
			runs = append(runs, &run{p: p, a: a, m: m})
		}
		snap := func() {
			for _, r := range runs {
				st := r.m.Stats()
				r.probe = append(r.probe, st.TrainBytes+st.PingBytes)
				r.uplink = append(r.uplink, r.a.link.Stats().Up.Bytes)
			}
		}
		time.Sleep(10 * time.Second) // warm-up: the first probes and classification
		const windows, window = 10, 6 * time.Second
		snap()
		tick := time.NewTicker(window)
		for range windows {
			<-tick.C
			snap()
		}
		tick.Stop()
		var mu sync.Mutex
		mu.Lock()
		for _, r := range runs {
			capBytes := float64(r.p.Down.RateBps) / 8 * window.Seconds()
			var worst float64
			for i := 1; i <= windows; i++ {
				worst = max(worst, float64(r.probe[i]-r.probe[i-1])/capBytes*100)
			}
			total := capBytes * windows
			b.ReportMetric(float64(r.probe[windows]-r.probe[0])/total*100, "overhead-pct-"+r.p.Name)
			b.ReportMetric(worst, "worst6s-pct-"+r.p.Name)
			b.ReportMetric(float64(r.uplink[windows]-r.uplink[0])/total*100, "uplink-pct-"+r.p.Name)
		}
		mu.Unlock()
	}
}

// BenchmarkDatagramTrain checks the claim that quic-go paces datagrams:
// trains of 40 packets sent back to back as QUIC datagrams and as raw
// sealed packets over the same link (fiber: 100 Mbit/s, 10 ms; GEO
// satellite: 20 Mbit/s, 600 ms), 10 trains each; reports each median
// estimate and datagram/raw.
func BenchmarkDatagramTrain(b *testing.B) {
	for _, p := range []linksim.Profile{linksim.Fiber(), linksim.SatelliteGEO()} {
		b.Run(p.Name, func(b *testing.B) { benchDatagramTrain(b, p) })
	}
}

func benchDatagramTrain(b *testing.B, prof linksim.Profile) {
	const n = 40
	for b.Loop() {
		core := newTestCore(b)
		var mu sync.Mutex
		var arrivals []time.Time
		core.onDatagram = func(d []byte, at time.Time) bool {
			f, _, err := wire.Parse(d)
			if err != nil {
				return false
			}
			if _, ok := f.(*wire.ProbeTrain); !ok {
				return false
			}
			mu.Lock()
			arrivals = append(arrivals, at)
			mu.Unlock()
			return true
		}
		a := dialTestAgent(b, core, prof, 91)
		p, err := NewProber(a.conn, a.tr, a.session)
		if err != nil {
			b.Fatal(err)
		}
		var dgram, raw []float64
		for i := range 10 {
			mu.Lock()
			arrivals = arrivals[:0]
			mu.Unlock()
			var size int
			for j := range n {
				f := &wire.ProbeTrain{TrainID: uint64(1000 + i), Index: uint32(j), Count: n}
				if err := f.PadTo(1100); err != nil {
					b.Fatal(err)
				}
				buf, err := f.Append(nil)
				if err != nil {
					b.Fatal(err)
				}
				size = len(buf)
				if err := a.conn.SendDatagram(buf); err != nil {
					b.Fatal(err)
				}
			}
			// Whatever has arrived within 5 s is the train: a lost
			// packet never arrives.
			testutil.Poll(5*time.Second, func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(arrivals) >= n
			})
			mu.Lock()
			sizes := make([]int, len(arrivals))
			for k := range sizes {
				sizes[k] = size
			}
			if bps, ok := TrainEstimate(sizes, arrivals); ok {
				dgram = append(dgram, bps)
			}
			mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			res, err := p.Train(ctx, n)
			cancel()
			if err == nil && res.OK {
				raw = append(raw, res.Bps)
			}
			time.Sleep(100 * time.Millisecond)
		}
		p.Close()
		d, r := percentile(dgram, 0.5), percentile(raw, 0.5)
		b.ReportMetric(d/1e6, "datagram-Mbps")
		b.ReportMetric(r/1e6, "raw-Mbps")
		b.ReportMetric(d/r, "datagram/raw")
	}
}

// BenchmarkDetectionLoaded times a drop in bandwidth alone while real
// traffic fills the link (a bulk QUIC stream whose acknowledged bytes go
// into the monitor's DeliveryMeter, as the agent's data lane does), over
// 10 cycles: 40 to 4 Mbit/s at the same 20 ms (broadband to mobile),
// then back. Reports the time from the switch to the event, and how many
// bandwidth probes ran while the link was full (the delivery rate stands
// in for them).
func BenchmarkDetectionLoaded(b *testing.B) {
	for b.Loop() {
		core := newTestCore(b)
		a := dialTestAgent(b, core, filledLink(40e6), 62)
		m := startMonitor(b, testConfig(), nil, MonitorOptions{Name: "loaded"})
		events, cancel := m.Subscribe()
		if err := m.Attach(a.conn, a.tr, a.session); err != nil {
			b.Fatal(err)
		}
		if _, _, ok := waitClass(b, events, 15*time.Second, is(edgesync.Broadband)); !ok {
			b.Fatalf("not broadband within 15s; status %+v", m.Status())
		}
		load := startBulk(b, a, m.DeliveryMeter(), 0)
		var took []float64
		misses := 0
		probes := m.Stats().Probes
		for c := range 10 {
			if m.Status().Class != edgesync.Broadband {
				waitClass(b, events, 15*time.Second, is(edgesync.Broadband))
			}
			time.Sleep(2 * time.Second) // the full link holds a while: part of the scenario
			for len(events) > 0 {
				<-events
			}
			a.setProfile(b, filledLink(4e6))
			ev, d, ok := waitClass(b, events, 10*time.Second, is(edgesync.Mobile))
			if !ok {
				misses++
				d = 10 * time.Second
				b.Logf("cycle %d: missed; status %+v", c, m.Status())
			} else if c == 0 {
				b.Logf("40 -> 4 Mbit/s under load: %v in %v: %s (%v)", ev.Change.New, d.Round(time.Millisecond), ev.Change.Reason, ev.Change.Trigger)
			}
			took = append(took, d.Seconds())
			a.setProfile(b, filledLink(40e6))
		}
		load.stop()
		cancel()
		b.ReportMetric(percentile(took, 0.5), "p50-detect-s")
		b.ReportMetric(percentile(took, 0.95), "p95-detect-s")
		b.ReportMetric(float64(misses), "missed")
		b.ReportMetric(float64(m.Stats().Probes-probes), "probes-under-load")
	}
}
