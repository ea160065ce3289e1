package agent

import (
	"bytes"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// drainCase is one link of BenchmarkPackedDrain: the profile, the class
// the agent is pinned to and the backlog's number of 1 KiB ops.
// summaries keeps the satellite class's summary-first parameters on
// linksim's SatelliteGEO (satelliteAgent); otherwise every op goes in
// full (packed).
type drainCase struct {
	name      string
	prof      linksim.Profile
	class     edgesync.LinkClass
	ops       int
	summaries bool
	// size is each op's payload bytes; 0 is 1 KiB.
	size int
}

// opSize is each op's payload bytes.
func (dc drainCase) opSize() int {
	if dc.size > 0 {
		return dc.size
	}
	return 1 << 10
}

// drainCases are the links of BenchmarkPackedDrain: the LTE-like link of
// the latency benchmarks (internal/soak), broadband (goodput row 4) and
// linksim's geostationary satellite, packed and with its summaries
// first.
func drainCases() []drainCase {
	return []drainCase{
		{name: "lte-10mbit-60ms", prof: lteLike(), class: edgesync.Mobile, ops: 3000},
		{name: "broadband-20mbit-20ms", prof: symmetricLink("20mbit-20ms", 20_000_000, 20*time.Millisecond, 0), class: edgesync.Broadband, ops: 3000},
		{name: "satellite-geo-2mbit-600ms", prof: linksim.SatelliteGEO(), class: edgesync.Satellite, ops: 1500},
		{name: "satellite-geo-summaries", prof: linksim.SatelliteGEO(), class: edgesync.Satellite, ops: 1500, summaries: true},
	}
}

// lteLike is the LTE-like link of the latency benchmarks
// (internal/soak): 10 Mbit/s up, 50 down, 60 ms RTT, 0-5 ms of jitter
// each way.
func lteLike() linksim.Profile {
	lte := linksim.Direction{RateBps: 10_000_000, Delay: 30 * time.Millisecond, Jitter: 5 * time.Millisecond, QueueDelay: 150 * time.Millisecond}
	lteDown := lte
	lteDown.RateBps = 50_000_000
	return linksim.Profile{Name: "lte-like", Up: lte, Down: lteDown, Summary: "10 Mbit/s up, 50 down, 60 ms RTT, 0-5 ms jitter each way"}
}

// BenchmarkPackedDrain times a backlog of small ops (normal events of
// 1 KiB, random bytes, each with a small summary: sensor records queued
// during an outage) from Start until every op is stored at the core. The
// agent starts with the link monitor's figures of a previous run
// (restored from its status file), as after a restart. It reports
// drain-ratio, that time over the link time of the payload bytes at the
// uplink's rate; one-op-ratio, the same for the same bytes put as one op
// (the baseline, in the same run); vs-one-op, their quotient; drain-s,
// the time itself, and outbox-empty-s, until the outbox is empty (the
// agent settles each answer with it after); crit-max-ms and
// crit-mean-ms, what three critical ops put a third of the way through
// the backlog took to reach the core; bw-err-p50-pct and bw-err-p90-pct, how
// far the bandwidth the agent's status showed, read every 250 ms from 1 s
// after Start until the backlog was at the core, was from the uplink's
// configured rate (docs/linkmon.md, "Under the agent's own load").
//
//	go test -run '^$' -bench PackedDrain -benchtime 1x -count 2 ./agent
func BenchmarkPackedDrain(b *testing.B) {
	for _, dc := range drainCases() {
		b.Run(dc.name, func(b *testing.B) {
			payloads := drainPayloads(dc)
			var took, emptied, baseTook time.Duration
			var crit []time.Duration
			var bwErr []float64
			for b.Loop() {
				r := packedDrain(b, dc, payloads, false)
				took, emptied, crit = took+r.took, emptied+r.outbox, append(crit, r.crit...)
				bwErr = append(bwErr, bandwidthErrors(r.status, time.Second, dc.prof.Up.RateBps)...)
				baseTook += packedDrain(b, dc, payloads, true).took
			}
			n := float64(b.N)
			linkTime := float64(dc.ops*dc.opSize()*8) / float64(dc.prof.Up.RateBps)
			b.ReportMetric(took.Seconds()/n/linkTime, "drain-ratio")
			b.ReportMetric(baseTook.Seconds()/n/linkTime, "one-op-ratio")
			b.ReportMetric(took.Seconds()/baseTook.Seconds(), "vs-one-op")
			b.ReportMetric(took.Seconds()/n, "drain-s")
			b.ReportMetric(emptied.Seconds()/n, "outbox-empty-s")
			if len(crit) > 0 {
				var sum, most time.Duration
				for _, d := range crit {
					sum, most = sum+d, max(most, d)
				}
				b.ReportMetric(float64(most.Milliseconds()), "crit-max-ms")
				b.ReportMetric(float64(sum.Milliseconds())/float64(len(crit)), "crit-mean-ms")
			}
			if len(bwErr) > 0 {
				b.ReportMetric(testutil.Percentile(bwErr, 0.5), "bw-err-p50-pct")
				b.ReportMetric(testutil.Percentile(bwErr, 0.9), "bw-err-p90-pct")
			}
		})
	}
}

// drainResult is one drain of packedDrain: the time from Start until
// every op is stored at the core (took) and until the outbox is empty,
// every answer settled (outbox), and what each critical op put meanwhile
// took to reach the core.
type drainResult struct {
	took, outbox time.Duration
	crit         []time.Duration
	status       []statusSample // read every statusEvery from Start until every op is at the core
}

// statusEvery is how often packedDrain reads the agent's status.
const statusEvery = 250 * time.Millisecond

// statusSample is the agent's status of its link at a moment of a drain.
type statusSample struct {
	at       time.Duration // since Start
	bps      float64       // the bandwidth shown
	rtt      time.Duration // the RTT shown
	measured edgesync.LinkClass
	probed   int64 // the link monitor's probe bytes so far
}

// watchStatus reads a's status of its endpoint "core" every statusEvery
// until the returned function is called (or tb's cleanup), which returns
// what it read or fails tb if a read failed.
func watchStatus(tb testing.TB, a *Agent, start time.Time) func() []statusSample {
	stop := make(chan struct{})
	done := make(chan struct{})
	var samples []statusSample
	var failed error
	go func() {
		defer close(done)
		tick := time.NewTicker(statusEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			st, err := a.Status("core")
			if err != nil {
				failed = err
				return
			}
			samples = append(samples, statusSample{at: time.Since(start), bps: st.Figures.BandwidthBps, rtt: st.Figures.RTT,
				measured: st.Measured, probed: st.ProbeBytes})
		}
	}()
	var once sync.Once
	end := func() { once.Do(func() { close(stop); <-done }) }
	tb.Cleanup(end) // a drain that failed ends the reads too
	return func() []statusSample {
		end()
		if failed != nil {
			tb.Fatalf("status during the drain: %v", failed)
		}
		return samples
	}
}

// bandwidthErrors is, in percent, how far each sample's bandwidth from
// from on is from rate bit/s.
func bandwidthErrors(samples []statusSample, from time.Duration, rate int64) []float64 {
	var errs []float64
	for _, s := range samples {
		if s.at >= from {
			errs = append(errs, 100*math.Abs(s.bps-float64(rate))/float64(rate))
		}
	}
	return errs
}

// drainPayloads are dc's ops' payloads: random bytes.
func drainPayloads(dc drainCase) [][]byte {
	payloads := make([][]byte, dc.ops)
	for i := range payloads {
		payloads[i] = testutil.RandomBytes(uint64(i), dc.opSize())
	}
	return payloads
}

// packedDrain runs a core and an agent of site-1 (siteCore) pinned to
// dc.class, with batch interval 0, through a link of dc.prof whose
// monitor measured the link in a first run; it puts the payloads in the
// outbox (as one op when oneOp), starts the agent and times the drain
// until every op is stored at the core. Unless oneOp, it puts three
// critical ops one after the other once a third of the backlog is
// stored, and times each to the core.
func packedDrain(tb testing.TB, dc drainCase, payloads [][]byte, oneOp bool) drainResult {
	tb.Helper()
	p, c, cfg := siteCore(tb)
	opts, _ := shaped(dc.prof)
	agent := func() *Agent {
		if dc.summaries {
			a, _ := satelliteAgent(tb, p, cfg, 0)
			return a
		}
		a := newAgent(tb, p, cfg, opts)
		pinFast(tb, a, dc.class, 0)
		return a
	}
	// A first run measures the link; its monitor keeps the figures in
	// the data directory for the next.
	warm := agent()
	if err := warm.Start(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	testutil.WaitFor(tb, time.Minute, "the link monitor to measure the link's bandwidth and RTT", func() bool {
		f := mustStatus(tb, warm).Figures
		return f.BandwidthBps > 0 && !f.BandwidthLowerBound && f.RTT > 0
	})
	warm.Close()

	a := agent()
	var ids []edgesync.OpID
	if oneOp {
		ids = append(ids, enqueue(tb, a, outbox.NewOp{Endpoint: "core", Key: "backlog", Priority: edgesync.Normal, Kind: edgesync.EventOp,
			Payload: bytes.NewReader(bytes.Join(payloads, nil)), Summary: []byte(`{"records":"all"}`)}).ID)
	} else {
		for i, pl := range payloads {
			ids = append(ids, enqueue(tb, a, outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("sensors/%d", i), Priority: edgesync.Normal,
				Kind: edgesync.EventOp, Payload: bytes.NewReader(pl), Summary: fmt.Appendf(nil, `{"n":%d}`, i)}).ID)
		}
	}
	stored := 0 // ids[:stored] are stored at the core
	allStored := func() bool {
		for stored < len(ids) {
			if ok, err := c.Store.Applied("site-1", ids[stored]); err != nil || !ok {
				return false
			}
			stored++
		}
		return true
	}
	f := mustStatus(tb, a).Figures
	start := time.Now()
	if err := a.Start(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	watched := watchStatus(tb, a, start)
	var r drainResult
	if !oneOp {
		testutil.WaitFor(tb, 5*time.Minute, "a third of the backlog at the core", func() bool {
			st, err := a.Outbox().Stats()
			return err == nil && st.Total.Ops <= 2*len(payloads)/3
		})
		for i := range 3 {
			if outboxEmpty(a) {
				break // the backlog drained first: nothing to wait behind
			}
			r.crit = append(r.crit, criticalAtCore(tb, a, c, i))
		}
	}
	testutil.WaitFor(tb, 5*time.Minute, "every op of the backlog at the core", allStored)
	r.took = time.Since(start)
	r.status = watched()
	testutil.WaitFor(tb, time.Minute, "the outbox to empty", func() bool { return outboxEmpty(a) })
	r.outbox = time.Since(start)
	tb.Logf("%s one op %v: at the core in %v, the outbox empty in %v (monitor's figures at start: %s); critical ops %v",
		dc.name, oneOp, r.took.Round(time.Millisecond), r.outbox.Round(time.Millisecond), f, r.crit)
	a.Close()
	return r
}
