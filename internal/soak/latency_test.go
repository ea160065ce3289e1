package soak

import (
	"bytes"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/core/admin"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// latencyLink is a link of BenchmarkPutLatencyProcesses, the class the
// agent's link monitor should judge it and that class's default batch
// interval.
type latencyLink struct {
	name     string
	prof     linksim.Profile
	class    edgesync.LinkClass
	interval time.Duration
}

// quiet is how long the link carries no data before the quiet op after
// the stream: the class's default interval, or the link monitor's
// idle_after (10 s) if longer (docs/linkmon.md, "Idle links"), and a
// second more; the same with interval 0, so that both put that op on a
// link in the same state.
func (ll latencyLink) quiet() time.Duration { return max(ll.interval, 10*time.Second) + time.Second }

func latencyLinks() []latencyLink {
	lte := linksim.Direction{RateBps: 10_000_000, Delay: 30 * time.Millisecond, Jitter: 5 * time.Millisecond, QueueDelay: 150 * time.Millisecond}
	lteDown := lte
	lteDown.RateBps = 50_000_000
	return []latencyLink{
		{"broadband", goodputLink(), edgesync.Broadband, 5 * time.Second},
		{"lte", linksim.Profile{Name: "lte-like", Up: lte, Down: lteDown,
			Summary: "10 Mbit/s up, 50 down, 60 ms RTT, 0-5 ms jitter each way"}, edgesync.Mobile, 30 * time.Second},
		{"satellite-geo", linksim.SatelliteGEO(), edgesync.Satellite, time.Minute},
	}
}

const (
	// latencyOpSize is the size of every op put: a sensor record.
	latencyOpSize = 1 << 10
	// latencyStream and latencyGap: the stream of (b) is latencyStream
	// normal ops latencyGap apart, and a critical op beside every tenth.
	latencyStream = 100
	latencyGap    = 200 * time.Millisecond
)

// BenchmarkPutLatencyProcesses measures what a producer of small ops
// waits (docs/design.md#batch-interval): real `edge-sync core` and
// `edge-sync agent` processes with the default config, the agent's link
// to the core through a linksim relay, and 1 KiB JSON-like records put
// through the agent's control API (control.Client.Upload, what `edge-sync
// put` and a Go producer call; the time is from the call until the
// core's own store time of the event, read from its admin API). Per link
// (latencyLinks), after the agent has judged its class:
//
//   - quiet: a normal op put on a link that carried no ordinary data for
//     the class's interval: the first op (quiet-first), and one put after
//     the stream drained and the link was quiet for the class's default
//     interval, 10 s at least, and a second (quiet-after; the same wait
//     with interval 0). The promise: it goes at once.
//   - crit: a critical op on the quiet link, and one beside every tenth op
//     of the stream. The promise: never waits for the interval.
//   - stream: latencyStream normal ops latencyGap apart (20 s); the
//     first comes right after the quiet op's batch, so ops wait for the
//     interval's end (or a chunk's worth) and go together. The promise:
//     none waits much longer than the interval.
//
// The quiet ops are reported as their mean in ms over the runs, the
// others as p50 and p99, each beside the link's floor (floor-ms: one RTT,
// without jitter, plus the op's serialisation on the uplink; an op is
// stored after one way, so 0.5 is the least a ratio can be);
// stream-max/interval is the stream's slowest op over the
// class's interval. Beside the default config, the same run with every
// class's interval at 0 (i0-*), alternating; bytes/op are the UDP bytes
// both ways at the relay per op of the stream (from its first put until
// the outbox is empty, less the bytes the agent's link monitor sent), and
// bytes/op-ratio the default's over interval 0's: what batching saves.
// The monitor sends most of the bytes in that window (monitor-kB/s), so
// bytes/op is a small difference of large counts, and noisy.
//
//	go test -run '^$' -bench PutLatencyProcesses -benchtime 1x -count 3 -timeout 60m ./internal/soak
//
// EDGESYNC_LATENCY_LOGS=DIR appends the processes' trace logs to files in
// DIR.
func BenchmarkPutLatencyProcesses(b *testing.B) {
	bin := edgeSync(b)
	for _, ll := range latencyLinks() {
		b.Run(ll.name, func(b *testing.B) {
			var def, zero latencyRun
			for b.Loop() {
				def.add(putLatency(b, bin, ll, ""))
				zero.add(putLatency(b, bin, ll, intervalZero()))
			}
			floor := ll.prof.Up.Delay + ll.prof.Down.Delay + time.Duration(float64(latencyOpSize*8)/float64(ll.prof.Up.RateBps)*float64(time.Second))
			def.report(b, "", floor)
			zero.report(b, "i0-", floor)
			b.ReportMetric(ms(floor), "floor-ms")
			if def.interval > 0 {
				b.ReportMetric(float64(slices.Max(def.stream))/float64(def.interval), "stream-max/interval")
			}
			b.ReportMetric(def.perOp()/zero.perOp(), "bytes/op-ratio")
			b.ReportMetric(loadAvg(), "load-avg-1m")
		})
	}
}

// latencyRun is what putLatency measured, or the sum of several runs.
type latencyRun struct {
	interval time.Duration // the class's batch interval
	// first and after are the quiet ops: the first normal op, and the
	// one put an interval after the stream drained.
	first, after, crit, stream []time.Duration
	bytes                      int64 // the stream's UDP bytes, less the monitor's
	ops                        int   // the stream's ops, critical ones included
	// monitor are the bytes the agent's link monitor sent in the
	// stream's window (from its first put until the outbox was empty),
	// window its length.
	monitor int64
	window  time.Duration
}

func (r *latencyRun) add(u latencyRun) {
	r.interval = u.interval
	r.first = append(r.first, u.first...)
	r.after = append(r.after, u.after...)
	r.crit = append(r.crit, u.crit...)
	r.stream = append(r.stream, u.stream...)
	r.bytes += u.bytes
	r.ops += u.ops
	r.monitor += u.monitor
	r.window += u.window
}

func (r latencyRun) perOp() float64 { return float64(r.bytes) / float64(r.ops) }

// report reports r's figures with prefix: the quiet ops' mean (one each
// a run), the others' p50 and p99, each beside the floor.
func (r latencyRun) report(b *testing.B, prefix string, floor time.Duration) {
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"quiet-first", r.first}, {"quiet-after", r.after}} {
		var sum time.Duration
		for _, d := range s.d {
			sum += d
		}
		mean := sum / time.Duration(len(s.d))
		b.ReportMetric(ms(mean), prefix+s.name+"-ms")
		b.ReportMetric(float64(mean)/float64(floor), prefix+s.name+"/floor")
	}
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"crit", r.crit}, {"stream", r.stream}} {
		p50 := percentile(s.d, 0.50)
		b.ReportMetric(ms(p50), prefix+s.name+"-p50-ms")
		b.ReportMetric(ms(percentile(s.d, 0.99)), prefix+s.name+"-p99-ms")
		b.ReportMetric(float64(p50)/float64(floor), prefix+s.name+"-p50/floor")
	}
	b.ReportMetric(r.perOp(), prefix+"bytes/op")
	b.ReportMetric(float64(r.monitor)/1e3/r.window.Seconds(), prefix+"monitor-kB/s")
}

// putLatency runs one core, relay and agent on ll with the agent config's
// extra blocks (intervalZero, or "" for the default) and measures what
// BenchmarkPutLatencyProcesses describes.
func putLatency(b *testing.B, bin string, ll latencyLink, extra string) latencyRun {
	b.Helper()
	o := linkOpts{Extra: extra, Logs: os.Getenv("EDGESYNC_LATENCY_LOGS")}
	if o.Logs != "" {
		o.Level = "trace"
	}
	l := startLinked(b, bin, ll.prof, o)
	defer l.close()
	// The class decides the interval: wait until the monitor has judged
	// the link (the first samples may say unknown, whose interval is 30 s).
	ok := testutil.PollEvery(90*time.Second, 250*time.Millisecond, func() bool {
		st := l.status(b)
		return st.Connected && st.Class == ll.class
	})
	st := l.status(b)
	if !ok {
		b.Fatalf("%s: the agent judged the link %v, not %v, within 90 s (figures %+v, reason %q)", ll.name, st.Class, ll.class, st.Figures, st.Reason)
	}
	var run latencyRun
	run.interval = st.Params.Interval
	// The stored ops of the run, by key, with the core's store time.
	stored := map[string]time.Time{}
	var from uint64 = 1
	seen := func(keys ...string) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		evs, err := l.admin.Events(ctx, "site-1", from, admin.MaxLimit)
		if err != nil {
			return false
		}
		for _, ev := range evs {
			stored[ev.Key] = ev.Stored
			from = ev.Seq + 1
		}
		for _, k := range keys {
			if _, ok := stored[k]; !ok {
				return false
			}
		}
		return true
	}
	// An op waits at most the interval: wait for it that long and a
	// minute more, so that a late op is measured rather than a failure.
	bound := run.interval + time.Minute
	waitStored := func(what string, keys ...string) {
		b.Helper()
		if !testutil.PollEvery(bound, 20*time.Millisecond, func() bool { return seen(keys...) }) {
			b.Fatalf("%s: %s not stored at the core within %v\nagent:\n%s", ll.name, what, bound, tail(l.agent.out, 40))
		}
	}
	rnd := mrand.New(mrand.NewPCG(14, 1))
	put := func(key string, prio edgesync.Priority) time.Time {
		b.Helper()
		rec := latencyRecord(rnd, key)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := l.ctl.Upload(ctx, control.CmdSend, control.UploadParams{Endpoint: "core", Key: key, Priority: prio.String(), Kind: "event"},
			bytes.NewReader(rec), int64(len(rec))); err != nil {
			b.Fatalf("%s: put %s: %v", ll.name, key, err)
		}
		return start
	}
	took := func(key string, start time.Time) time.Duration { return stored[key].Sub(start) }

	// (a) A quiet link: a critical op, then a normal one.
	t := put("quiet/critical", edgesync.Critical)
	waitStored("the critical op on the quiet link", "quiet/critical")
	run.crit = append(run.crit, took("quiet/critical", t))
	t = put("quiet/first", edgesync.Normal)
	waitStored("the first normal op", "quiet/first")
	run.first = append(run.first, took("quiet/first", t))

	// (b) The stream, right after the quiet op's batch.
	probe0, wire0, t0 := l.status(b).ProbeBytes, l.relay.Stats(), time.Now()
	starts := map[string]time.Time{}
	var normal, critical []string
	tick := time.NewTicker(latencyGap)
	for i := range latencyStream {
		k := fmt.Sprintf("stream/%d", i)
		starts[k] = put(k, edgesync.Normal)
		normal = append(normal, k)
		if i%10 == 5 {
			k := fmt.Sprintf("stream/critical/%d", i)
			starts[k] = put(k, edgesync.Critical)
			critical = append(critical, k)
		}
		<-tick.C
	}
	tick.Stop()
	keys := append(slices.Clone(normal), critical...)
	waitStored("the stream", keys...)
	testutil.WaitFor(b, bound, "the agent's outbox to empty after the stream", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var s control.StatsResponse
		return l.ctl.Call(ctx, control.CmdStats, struct{}{}, &s) == nil && s.Outbox.Ops == 0
	})
	wire1, st1 := l.relay.Stats(), l.status(b)
	run.ops, run.window, run.monitor = len(keys), time.Since(t0), st1.ProbeBytes-probe0
	run.bytes = int64(wire1.Up.Bytes-wire0.Up.Bytes+wire1.Down.Bytes-wire0.Down.Bytes) - run.monitor
	for _, k := range normal {
		run.stream = append(run.stream, took(k, starts[k]))
	}
	for _, k := range critical {
		run.crit = append(run.crit, took(k, starts[k]))
	}

	// (a) again: a normal op after the link carried no ordinary data for
	// the class's default interval, or for long enough to be idle.
	if run.interval > ll.interval {
		b.Fatalf("%s: the class's interval is %v, more than the %v the benchmark was written for", ll.name, run.interval, ll.interval)
	}
	time.Sleep(ll.quiet()) // not synchronisation: the quiet time
	up0, mon0 := l.relay.Stats().Up.Bytes, l.status(b).ProbeBytes
	t = put("quiet/after", edgesync.Normal)
	waitStored("the normal op after a quiet interval", "quiet/after")
	run.after = append(run.after, took("quiet/after", t))
	b.Logf("quiet/after: %v, put at %s; meanwhile the uplink carried %d B, the monitor sent %d B",
		took("quiet/after", t), t.Format("15:04:05.000"), l.relay.Stats().Up.Bytes-up0, l.status(b).ProbeBytes-mon0)
	b.Logf("%s, %v (interval %v): quiet %v, %v; critical p50 %v max %v; stream p50 %v p99 %v max %v; %d B/op (in %v up %d B in %d packets, %d dropped at the queue, down %d B in %d, monitor %d B)",
		ll.name, st.Class, run.interval, run.first[0], run.after[0], percentile(run.crit, 0.5), slices.Max(run.crit),
		percentile(run.stream, 0.5), percentile(run.stream, 0.99), slices.Max(run.stream), run.bytes/int64(run.ops), run.window.Round(time.Millisecond),
		wire1.Up.Bytes-wire0.Up.Bytes, wire1.Up.Packets-wire0.Up.Packets, wire1.Up.DroppedQueue-wire0.Up.DroppedQueue, wire1.Down.Bytes-wire0.Down.Bytes, wire1.Down.Packets-wire0.Down.Packets,
		st1.ProbeBytes-probe0)
	return run
}

// latencyRecord is a JSON-like sensor record of latencyOpSize bytes.
func latencyRecord(rnd *mrand.Rand, key string) []byte {
	rec := fmt.Appendf(nil, `{"key":%q,"t":%d,"readings":[`, key, time.Now().UnixNano())
	for len(rec) < latencyOpSize-64 {
		rec = fmt.Appendf(rec, `{"s":"s-%d","v":%.4f,"ok":%t},`, rnd.IntN(64), rnd.Float64()*100, rnd.IntN(2) == 0)
	}
	rec = append(rec[:len(rec)-1], "]}"...)
	return append(rec, bytes.Repeat([]byte(" "), latencyOpSize-len(rec))...)
}

// percentile returns the q-quantile of ds (nearest rank).
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
