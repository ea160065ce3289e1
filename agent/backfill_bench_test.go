package agent

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/demodata"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// demoBacklog is what the demo's workload (internal/cli/demo.go) leaves in
// the outbox after `seconds` of production with the link down: a ~2 KiB
// sensor record per pump (normal, keyed, with a summary; older versions
// superseded), an analytics event every second, an alarm every 3 s, a
// schema change every 20 s, and a large background file, half random and
// half log text.
func demoBacklog(seconds int, large int) []outbox.NewOp {
	rnd := rand.New(rand.NewPCG(7, 11))
	var ops []outbox.NewOp
	add := func(key string, p edgesync.Priority, kind edgesync.OpKind, payload, summary []byte) {
		ops = append(ops, outbox.NewOp{Endpoint: "core", Key: key, Priority: p, Kind: kind, Payload: bytes.NewReader(payload), Summary: summary})
	}
	for n := range seconds * 5 {
		pump := n % 16
		add(fmt.Sprintf("sensors/pump-%02d", pump), edgesync.Normal, edgesync.StateOp, demodata.SensorRecord(rnd, pump, n), fmt.Appendf(nil, `{"pump":%d,"n":%d}`, pump, n))
		if n%15 == 0 {
			add("alarms", edgesync.Critical, edgesync.EventOp, fmt.Appendf(nil, `{"alarm":"pressure high","pump":%d,"n":%d}`, rnd.IntN(16), n), nil)
		}
		if n%5 == 0 {
			add("analytics/flow", edgesync.Analytics, edgesync.EventOp, bytes.Repeat(fmt.Appendf(nil, `{"metric":"flow","v":%d}`, rnd.IntN(1000)), 200), []byte("flow samples"))
		}
		if n%100 == 0 {
			add("schema/readings", edgesync.Schema, edgesync.StateOp, fmt.Appendf(nil, `{"table":"readings","version":%d}`, n/100+1), nil)
		}
	}
	add("files/camera-archive.tar", edgesync.Background, edgesync.EventOp, demodata.LargeFile(rnd, large), []byte("camera archive"))
	return ops
}

// BenchmarkSatelliteDrain puts the demo's workload (60 s of it and a
// 4 MiB file) into an agent whose link is satellite all the time (600 ms
// RTT, 2 Mbit/s up) and times it from Start until every op has arrived in
// full. It reports drain-ratio, that time over the time the link needs for
// the backlog's payload bytes at its rate (goal ≤ 1.3);
// drain-ratio-wire, the same over the bytes the link carried; the bytes
// on the wire (UDP, probes included) per payload byte; and vs-full-first,
// the time over that of the same backlog in the same run with summaries
// off (every op sent in full at once, in priority order: the baseline).
//
//	go test -run '^$' -bench SatelliteDrain -benchtime 1x -count 3 ./agent
func BenchmarkSatelliteDrain(b *testing.B) {
	rate := float64(linksim.SatelliteGEO().Up.RateBps)
	var took, baseTook time.Duration
	var payload, wire, backfilled int64
	for b.Loop() {
		d, pl, w, bf := satelliteDrain(b, true)
		took, payload, wire, backfilled = took+d, payload+pl, wire+w, backfilled+bf
		d, _, _, _ = satelliteDrain(b, false)
		baseTook += d
	}
	linkTime := time.Duration(float64(payload*8) / rate * float64(time.Second))
	wireTime := time.Duration(float64(wire*8) / rate * float64(time.Second))
	b.ReportMetric(took.Seconds()/linkTime.Seconds(), "drain-ratio")
	b.ReportMetric(took.Seconds()/wireTime.Seconds(), "drain-ratio-wire")
	b.ReportMetric(float64(wire)/float64(payload), "wire-bytes/payload-byte")
	b.ReportMetric(took.Seconds()/baseTook.Seconds(), "vs-full-first")
	b.ReportMetric(took.Seconds()/float64(b.N), "drain-s")
	b.ReportMetric(float64(backfilled)/float64(b.N), "backfilled-ops")
}

// satelliteDrain runs one drain of demoBacklog with summaries first (or
// off) and returns the time from Start to an empty outbox, the payload
// bytes, the bytes the link carried up, and the ops backfilled.
func satelliteDrain(b *testing.B, summaries bool) (took time.Duration, payload, wire, backfilled int64) {
	a, _, _, link := satelliteLink(b, 100*time.Millisecond)
	if !summaries {
		off, sat := false, edgesync.Satellite
		fast := 100 * time.Millisecond
		if err := a.SetProfile(sat, linkmon.Override{Interval: &fast, SummaryOnly: &off}); err != nil {
			b.Fatal(err)
		}
	}
	for _, n := range demoBacklog(60, 4<<20) {
		enqueue(b, a, n)
	}
	st, err := a.Outbox().Stats()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if err := a.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	testutil.WaitFor(b, 5*time.Minute, "the backlog to drain through the satellite link", func() bool { return outboxEmpty(a) })
	took = time.Since(start)
	backfilled = a.Stats()[0].Backfilled
	a.Close()
	return took, st.Total.Bytes, int64(link().Stats().Up.Bytes), backfilled
}
