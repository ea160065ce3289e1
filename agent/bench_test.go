package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// goodputCase is one link of BenchmarkGoodput: the profile, the class the
// agent is pinned to (so the benchmark measures sending, not detection) and
// a transfer long enough to get past slow start; name, if set, names the
// sub-benchmark instead of the profile.
type goodputCase struct {
	profile linksim.Profile
	class   edgesync.LinkClass
	size    int
	name    string
}

// goodputRows are the links and sizes of the goodput rows
// (docs/linksim.md, "The goodput rows"), each pinned to the class the
// default thresholds give it (docs/design.md#link-classes).
func goodputRows() []goodputCase {
	return []goodputCase{
		{linksim.SatelliteGEOLossy(), edgesync.Satellite, 8 << 20, "row1-2mbit-600ms-1pct-8MiB"},
		{geo10MbitLossy(), edgesync.Satellite, 16 << 20, "row2-10mbit-600ms-1pct-16MiB"},
		{symmetricLink("50mbit-40ms-1pct", 50_000_000, 40*time.Millisecond, 0.01), edgesync.Broadband, 32 << 20, "row3-50mbit-40ms-1pct-32MiB"},
		{symmetricLink("20mbit-20ms", 20_000_000, 20*time.Millisecond, 0), edgesync.Broadband, 16 << 20, "row4-20mbit-20ms-0pct-16MiB"},
		{linksim.SatelliteGEO(), edgesync.Satellite, 8 << 20, "row5-2mbit-600ms-0pct-8MiB"},
	}
}

// symmetricLink is a link of rate bit/s each way, rtt round trip and loss
// each way, with linksim's default queue.
func symmetricLink(name string, rate int64, rtt time.Duration, loss float64) linksim.Profile {
	d := linksim.Direction{RateBps: rate, Delay: rtt / 2, LossRate: loss}
	return linksim.Profile{Name: name, Up: d, Down: d,
		Summary: fmt.Sprintf("%d Mbit/s each way, %v RTT, %.0f %% loss", rate/1_000_000, rtt, loss*100)}
}

func goodputCases() []goodputCase {
	return []goodputCase{
		{linksim.Fiber(), edgesync.Fiber, 64 << 20, ""},
		{linksim.Broadband(), edgesync.Broadband, 16 << 20, ""},
		{linksim.LTE(), edgesync.Mobile, 16 << 20, ""},
		{linksim.SatelliteGEO(), edgesync.Satellite, 4 << 20, ""},
		{linksim.SatelliteGEOLossy(), edgesync.Satellite, 4 << 20, ""},
		{geo10MbitLossy(), edgesync.Satellite, 8 << 20, ""},
		{linksim.SatelliteLEO(), edgesync.Broadband, 16 << 20, ""},
	}
}

// geo10MbitLossy is a faster geostationary uplink: 10 Mbit/s, 600 ms RTT,
// 1 % random loss each way (where one Cubic connection reaches a few per
// cent of the link).
func geo10MbitLossy() linksim.Profile {
	p := linksim.SatelliteGEOLossy()
	p.Name = "satellite-geo-10mbit-lossy"
	p.Up.RateBps = 10_000_000
	p.Summary = "satellite-geo-lossy with a 10 Mbit/s uplink"
	return p
}

// benchNoLane runs the agent's transfers with the data lane off (the QUIC
// stream path), to measure the "before" figures in the same setting:
//
//	EDGESYNC_BENCH_NOLANE=1 go test -run '^$' -bench Goodput -benchtime 1x ./agent
var benchNoLane = os.Getenv("EDGESYNC_BENCH_NOLANE") != ""

// benchCold enqueues the op as soon as the agent is connected, before its
// link monitor has measured the link: the lane then starts from a cold
// estimate (startup), as on an agent's first connection ever.
//
//	EDGESYNC_BENCH_COLD=1 go test -run '^$' -bench Goodput -benchtime 1x ./agent
var benchCold = os.Getenv("EDGESYNC_BENCH_COLD") != ""

// benchNoRaw skips the raw quic-go baseline (minutes on lossy 600 ms
// links), for quick comparisons of the agent alone.
var benchNoRaw = os.Getenv("EDGESYNC_BENCH_NORAW") != ""

// goodputRuns counts BenchmarkGoodput's iterations, to alternate the
// order of its two variants.
var goodputRuns int

// BenchmarkGoodput sends one incompressible op at priority high through
// each linksim profile, and through the goodput rows (docs/linksim.md, "The
// goodput rows"), and reports delivered payload bit/s over the profile's
// uplink rate, timed from the producer's put (Enqueue called) until the
// core has stored the op: tuned (goodput-ratio: the class's parameters with
// batch interval 0 and no summaries) and with the class's own defaults
// (default-goodput- ratio: its batch interval, running since a first batch
// that sent data, as on a running agent), their ratio (default/tuned), and
// the tuned figure over one raw quic-go stream through the same link in the
// same run (ratio-vs-raw-quic).
//
//	go test -run '^$' -bench Goodput -benchtime 1x -count 3 ./agent
//	EDGESYNC_BENCH_NORAW=1 go test -run '^$' -bench 'Goodput/row' -benchtime 1x -timeout 60m ./agent
func BenchmarkGoodput(b *testing.B) {
	for _, gc := range append(goodputCases(), goodputRows()...) {
		name := gc.name
		if name == "" {
			name = gc.profile.Name
		}
		b.Run(name, func(b *testing.B) {
			payload := make([]byte, gc.size)
			_, _ = rand.Read(payload)
			p := testutil.NewPKI(b, "site-1")
			var tuned, dflt transferTimes
			var raw time.Duration
			var pauses int64
			for b.Loop() {
				// Alternate which variant goes first across runs
				// (-count), so that neither always follows the other.
				first := goodputRuns%2 == 0
				goodputRuns++
				for _, isTuned := range []bool{first, !first} {
					tt, st := agentTransfer(b, p, gc, payload, isTuned)
					if isTuned {
						tuned.add(tt)
						pauses += st.Paused
					} else {
						dflt.add(tt)
					}
				}
				if !benchNoRaw {
					raw += rawQUICTransfer(b, p, gc.profile, payload)
				}
			}
			ours, def := tuned.took, dflt.took
			n := float64(b.N)
			b.ReportMetric(float64(pauses)/n, "pauses/op")
			// Where the tuned transfer's time goes, from the put on.
			b.ReportMetric(tuned.enqueue.Seconds()/n, "enqueue-s")
			b.ReportMetric(tuned.start.Seconds()/n, "start-s")
			b.ReportMetric(tuned.data.Seconds()/n, "data-s")
			b.ReportMetric(tuned.land.Seconds()/n, "land-s")
			b.ReportMetric(tuned.commit.Seconds()/n, "commit-s")
			b.ReportMetric(dflt.start.Seconds()/n, "default-start-s")
			b.ReportMetric(dflt.data.Seconds()/n, "default-data-s")
			b.ReportMetric(dflt.land.Seconds()/n, "default-land-s")
			rate := float64(gc.profile.Up.RateBps)
			bits := float64(len(payload)*8) * float64(b.N)
			b.ReportMetric(bits/ours.Seconds()/rate, "goodput-ratio")
			b.ReportMetric(bits/def.Seconds()/rate, "default-goodput-ratio")
			b.ReportMetric(ours.Seconds()/def.Seconds(), "default/tuned")
			if !benchNoRaw {
				b.ReportMetric(bits/raw.Seconds()/rate, "raw-quic-ratio")
				b.ReportMetric(raw.Seconds()/ours.Seconds(), "ratio-vs-raw-quic")
			}
		})
	}
}

// transferTimes is where one op's time goes, from the producer's put until
// the core has stored it: the outbox write (enqueue: Enqueue returned),
// until the link has carried its first 64 KiB (start), until it has
// carried as many bytes as the payload (data: with packet overhead, a
// few per cent short of its end), until the core has decoded as many
// (land: the rest of the data and the last chunk's decoding), and until
// the core has stored the op (commit: the hash check, the store's commit,
// and the answer).
type transferTimes struct {
	took, enqueue, start, data, land, commit time.Duration
}

func (t *transferTimes) add(u transferTimes) {
	t.took += u.took
	t.enqueue += u.enqueue
	t.start += u.start
	t.data += u.data
	t.land += u.land
	t.commit += u.commit
}

// agentTransfer runs a core and an agent pinned to gc.class through a
// linksim link and times one op from the producer's put (Enqueue called)
// until the core has stored it (transferTimes); it returns the endpoint's
// counters too. tuned sends under the class's parameters with batch
// interval 0 and no summaries; otherwise under the class's defaults. Both
// send a first small op before, whose batch starts the interval.
func agentTransfer(b *testing.B, p *testutil.PKI, gc goodputCase, payload []byte, tuned bool) (tt transferTimes, st EndpointStats) {
	b.Helper()
	c := coretest.Start(b, p, nil)
	cfg := coretest.AgentConfig(b, p, c.Addr.String())
	opts, link := shaped(gc.profile)
	opts.DisableLane = benchNoLane
	a := startAgent(b, p, cfg, opts)
	class := gc.class
	if tuned {
		pinFast(b, a, class, 0)
	} else if err := a.Switch("core", linkmon.Pin{Class: &class}); err != nil {
		b.Fatal(err)
	}
	testutil.WaitFor(b, 30*time.Second, "a connection", func() bool { return a.Stats()[0].Connected })
	// A batch that sent data, as on an agent that has been sending: under
	// the defaults, the class's interval now runs.
	enqueue(b, a, outbox.NewOp{Endpoint: "core", Key: "first", Priority: edgesync.High, Kind: edgesync.EventOp, Payload: bytes.NewReader([]byte("hello"))})
	testutil.WaitFor(b, time.Minute, "a first batch", func() bool { return a.eps["core"].batch.batches.Load() >= 1 })
	if !benchCold {
		// A running agent knows its link: its monitor's first probe after
		// the connection came up gives the lane its starting rate.
		testutil.WaitFor(b, 30*time.Second, "a first capacity estimate", func() bool {
			bps, _ := a.eps["core"].mon.Capacity()
			return bps > 0
		})
	}
	sent0 := link().Stats().Up.Bytes
	carried := func(n int) func() bool { return func() bool { return link().Stats().Up.Bytes >= sent0+uint64(n) } }
	start := time.Now()
	op := enqueue(b, a, outbox.NewOp{Endpoint: "core", Key: "bulk", Priority: edgesync.High, Kind: edgesync.EventOp, Payload: bytes.NewReader(payload)})
	accepted := time.Now()
	testutil.WaitFor(b, 10*time.Minute, "the transfer's first 64 KiB", carried(64<<10))
	started := time.Now()
	testutil.WaitFor(b, 10*time.Minute, "the transfer's bytes", carried(len(payload)))
	carriedAll := time.Now()
	applied := func() bool { ok, _ := c.Store.Applied("site-1", op.ID); return ok }
	testutil.WaitFor(b, 10*time.Minute, "the core to decode the transfer's bytes", func() bool {
		return c.Server.Stats().BytesReceived >= int64(len(payload)) || applied()
	})
	landed := time.Now()
	testutil.WaitFor(b, 10*time.Minute, "the transfer", applied)
	stored := time.Now()
	st = a.Stats()[0]
	a.Close()
	return transferTimes{took: stored.Sub(start), enqueue: accepted.Sub(start), start: started.Sub(accepted),
		data: carriedAll.Sub(started), land: landed.Sub(carriedAll), commit: stored.Sub(landed)}, st
}

// rawQUICTransfer is the baseline: one quic-go stream with default
// settings through the same link, timed from first write to the peer's
// answer after it read everything.
func rawQUICTransfer(b *testing.B, p *testutil.PKI, prof linksim.Profile, payload []byte) time.Duration {
	b.Helper()
	serverTLS := p.ServerTLS(b)
	serverTLS.NextProtos = []string{"raw"}
	spc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	srvTr := &quic.Transport{Conn: spc}
	ln, err := srvTr.Listen(serverTLS, nil)
	if err != nil {
		b.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan struct{})
	defer func() { stop(); ln.Close(); <-served; srvTr.Close(); spc.Close() }()
	go func() {
		defer close(served)
		conn, err := ln.Accept(sctx)
		if err != nil {
			return
		}
		// The client's close crosses the shaped link and may be lost:
		// close this side too, so nothing waits for the idle timeout.
		context.AfterFunc(sctx, func() { _ = conn.CloseWithError(0, "") })
		defer conn.CloseWithError(0, "")
		str, err := conn.AcceptStream(sctx)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, str)
		_, _ = str.Write([]byte{1})
		_ = str.Close()
		select {
		case <-conn.Context().Done():
		case <-sctx.Done():
		}
	}()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	lc, err := linksim.Wrap(pc, prof)
	if err != nil {
		b.Fatal(err)
	}
	tr := &quic.Transport{Conn: lc}
	defer func() { tr.Close(); lc.Close() }()
	clientTLS := p.ClientTLS(b, "127.0.0.1")
	clientTLS.NextProtos = []string{"raw"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conn, err := tr.Dial(ctx, ln.Addr(), clientTLS, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	start := time.Now()
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := str.Write(payload); err != nil {
		b.Fatal(err)
	}
	_ = str.Close()
	if _, err := io.ReadFull(str, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkCriticalLatency measures how long a critical op takes to reach
// the core while a large background transfer fills the link.
//
//	go test -run '^$' -bench CriticalLatency -benchtime 5x ./agent
func BenchmarkCriticalLatency(b *testing.B) {
	for _, gc := range goodputCases() {
		if gc.class == edgesync.Fiber {
			continue
		}
		b.Run(gc.profile.Name, func(b *testing.B) {
			p := testutil.NewPKI(b, "site-1")
			c := coretest.Start(b, p, nil)
			opts, _ := shaped(gc.profile)
			a := startAgent(b, p, coretest.AgentConfig(b, p, c.Addr.String()), opts)
			class := gc.class
			iv := time.Duration(0)
			pinFast(b, a, class, iv)
			bulk := make([]byte, 64<<20)
			_, _ = rand.Read(bulk)
			enqueue(b, a, outbox.NewOp{Endpoint: "core", Key: "bulk", Priority: edgesync.Background, Kind: edgesync.EventOp, Payload: bytes.NewReader(bulk)})
			// The bulk transfer is under way: its chunks reach the store.
			testutil.WaitFor(b, 2*time.Minute, "the bulk transfer to start", func() bool { return c.Server.Stats().BytesReceived >= 256<<10 })
			var total, worst time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				op := enqueue(b, a, outbox.NewOp{Endpoint: "core", Key: "alarm", Priority: edgesync.Critical, Kind: edgesync.EventOp, Payload: bytes.NewReader([]byte(fmt.Sprintf(`{"alarm":%d}`, i)))})
				testutil.WaitFor(b, time.Minute, "the critical op", func() bool {
					ok, _ := c.Store.Applied("site-1", op.ID)
					return ok
				})
				took := time.Since(start)
				total += took
				worst = max(worst, took)
			}
			// The bound of docs/design.md#goals: 2 s plus one chunk's
			// serialisation time.
			par, _, _ := a.eps["core"].params()
			bound := 2*time.Second + time.Duration(float64(par.ChunkSize*8)/float64(gc.profile.Up.RateBps)*float64(time.Second))
			b.ReportMetric(total.Seconds()/float64(b.N), "critical-latency-s")
			b.ReportMetric(worst.Seconds(), "max-latency-s")
			b.ReportMetric(bound.Seconds(), "bound-s")
		})
	}
}

// BenchmarkWireBytes sends a mixed workload with repeated versions of keys
// (sensor records that change a little; versionedWorkload) under each sync
// mode and reports encoded bytes per payload byte (wire-bytes), the UDP
// bytes the agent sent per payload byte (udp-bytes: with QUIC's and the
// lane's overhead, without probes) and the probes' bytes apart.
//
//	go test -run '^$' -bench WireBytes -benchtime 1x ./agent
func BenchmarkWireBytes(b *testing.B) {
	for _, mode := range edgesync.SyncModes() {
		b.Run(mode.String(), func(b *testing.B) {
			p := testutil.NewPKI(b, "site-1")
			var wireB, plainB, udpB, probeB int64
			for b.Loop() {
				c := coretest.Start(b, p, nil)
				opts, link := shaped(linksim.Unshaped()) // counts the UDP bytes
				a := startAgent(b, p, coretest.AgentConfig(b, p, c.Addr.String()), opts)
				// Fiber's parameters with no batch interval (each keyed op
				// waits for the one before), and the mode pinned.
				pinFast(b, a, edgesync.Fiber, 0)
				m, class := mode, edgesync.Fiber
				if err := a.Switch("core", linkmon.Pin{Class: &class, Mode: &m}); err != nil {
					b.Fatal(err)
				}
				ops := versionedWorkload(7, 300)
				for _, op := range ops {
					// Keyed ops are sent one at a time so each later version
					// can go as a delta against the one before.
					enqueue(b, a, outbox.NewOp{Endpoint: "core", Key: op.key, Priority: op.prio, Kind: op.kind, Payload: bytes.NewReader(op.payload)})
					if op.kind == edgesync.StateOp {
						testutil.WaitFor(b, time.Minute, "the op", func() bool { return outboxEmpty(a) })
					}
				}
				testutil.WaitFor(b, 2*time.Minute, "the workload", func() bool { return outboxEmpty(a) })
				for _, ms := range a.Stats()[0].Modes {
					wireB += ms.WireBytes
					plainB += ms.PlainBytes
				}
				probeB += a.eps["core"].probeBytes()
				a.Close()
				udpB += int64(link().Stats().Up.Bytes)
			}
			b.ReportMetric(float64(wireB)/float64(plainB), "wire-bytes/payload-byte")
			// Everything the agent sent but the link monitor's probes,
			// whose budget is a share of the link's capacity (on unshaped
			// loopback, a large one): QUIC and lane packets.
			b.ReportMetric(float64(udpB-probeB)/float64(plainB), "udp-bytes/payload-byte")
			b.ReportMetric(float64(probeB)/float64(plainB), "probe-bytes/payload-byte")
		})
	}
}

// versionedWorkload is n ops: a third events (compressible text), the rest
// new versions of 30 keyed JSON-like record files of 4-256 KiB, each
// version with about 2 % of its records changed from the one before.
func versionedWorkload(seed uint64, n int) []workloadOp {
	rnd := mrand.New(mrand.NewPCG(seed, seed+1))
	record := func(key, i int) []byte {
		return fmt.Appendf(nil, `{"sensor":"s-%d-%d","t":%d,"v":%.3f,"ok":%t}`+"\n",
			key, i, 1_700_000_000+rnd.IntN(1_000_000), rnd.Float64()*100, rnd.IntN(2) == 0)
	}
	docs := make([][][]byte, 30)
	ops := make([]workloadOp, 0, n)
	for i := range n {
		prio := edgesync.Priority(rnd.IntN(edgesync.NumPriorities))
		if i%3 == 0 {
			payload := make([]byte, 100+rnd.IntN(16<<10))
			for j := range payload {
				payload[j] = byte('a' + rnd.IntN(8))
			}
			ops = append(ops, workloadOp{prio: prio, kind: edgesync.EventOp, key: fmt.Sprintf("events/%d", i), payload: payload})
			continue
		}
		k := rnd.IntN(len(docs))
		if docs[k] == nil {
			nrec := (4<<10 + rnd.IntN(252<<10)) / 64
			for r := range nrec {
				docs[k] = append(docs[k], record(k, r))
			}
		} else {
			for range max(1, len(docs[k])/50) {
				r := rnd.IntN(len(docs[k]))
				docs[k][r] = record(k, r)
			}
		}
		ops = append(ops, workloadOp{prio: prio, kind: edgesync.StateOp, key: fmt.Sprintf("state/%d", k), payload: bytes.Join(docs[k], nil)})
	}
	return ops
}

// BenchmarkBatchWireBytes puts a stream of small ops (smallStream: 250
// JSON-like records of about 300 B, one every 20 ms) through a counted
// loopback link under broadband's parameters, with the batch interval
// at 0 and at 1 s (docs/design.md#batch-interval), and reports the UDP
// bytes both ways per op of each (the link monitor's probes off), their
// ratio (batched/interval-0: what batching saves), the batches that sent
// data and the worst put-to-ack latency under batching.
//
//	go test -run '^$' -bench BatchWireBytes -benchtime 1x -count 3 ./agent
func BenchmarkBatchWireBytes(b *testing.B) {
	p := testutil.NewPKI(b, "site-1")
	var zero, batched, batches int64
	var worst time.Duration
	for b.Loop() {
		z, _, _ := smallStream(b, p, 0)
		zero += z
		bb, n, w := smallStream(b, p, time.Second)
		batched += bb
		batches += n
		worst = max(worst, w)
	}
	ops := float64(smallStreamOps) * float64(b.N)
	b.ReportMetric(float64(zero)/ops, "bytes/op-interval-0")
	b.ReportMetric(float64(batched)/ops, "bytes/op-batched")
	b.ReportMetric(float64(batched)/float64(zero), "batched/interval-0")
	b.ReportMetric(float64(batches)/float64(b.N), "batches")
	b.ReportMetric(worst.Seconds(), "max-latency-s")
}

const smallStreamOps = 250

// smallStream runs a core and an agent pinned to broadband with batch
// interval iv, puts smallStreamOps small ops 20 ms apart, and returns the
// UDP bytes both ways from the first put until the last ack, the batches
// that sent data, and the worst latency from put to ack.
func smallStream(b *testing.B, p *testutil.PKI, iv time.Duration) (wire, batches int64, worst time.Duration) {
	b.Helper()
	c := coretest.Start(b, p, nil)
	cfg := coretest.AgentConfig(b, p, c.Addr.String())
	cfg.Endpoints[0].Monitor.Active = false // no probes in the count
	opts, link := shaped(linksim.Unshaped())
	a := startAgent(b, p, cfg, opts)
	pinFast(b, a, edgesync.Broadband, iv)
	testutil.WaitFor(b, 30*time.Second, "a connection", func() bool { return a.Stats()[0].Connected })
	rnd := mrand.New(mrand.NewPCG(3, 4))
	st0 := link().Stats()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := range smallStreamOps {
		rec := fmt.Appendf(nil, `{"sensor":"s-%d","t":%d,"v":%.3f,"ok":%t,"site":"site-1","unit":"kPa","fw":"2.4.1","seq":%d}`,
			i%16, 1_700_000_000+i, rnd.Float64()*100, rnd.IntN(2) == 0, i)
		rec = append(rec, bytes.Repeat([]byte(" "), max(0, 300-len(rec)))...)
		enqueue(b, a, outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("events/%d", i), Priority: edgesync.Normal, Kind: edgesync.EventOp, Payload: bytes.NewReader(rec)})
		<-tick.C
	}
	testutil.WaitFor(b, time.Minute, "the stream to drain", func() bool { return outboxEmpty(a) })
	st1 := link().Stats()
	wire = int64(st1.Up.Bytes-st0.Up.Bytes) + int64(st1.Down.Bytes-st0.Down.Bytes)
	batches = a.eps["core"].batch.batches.Load()
	worst = a.Stats()[0].Priorities[edgesync.Normal.String()].MaxLatency
	a.Close()
	return wire, batches, worst
}
