package jsstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/natstest"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// BenchmarkStoreIngest is the store's share of BenchmarkCoreIngest with
// its concurrency: N writers (agents) each receive small events as the
// server does (begin, write, commit, then the next), with no network in
// front, beside as many raw writers publishing the same payloads to a
// stream of their own on the same server, each waiting for its ack, in
// the same run. It reports both rates and the CPU an op costs the process
// (the NATS server is in it); ratio-vs-raw is the store's ops/s over the
// raw publishes', cpu-ratio-vs-raw the raw publish's CPU over the op's.
//
//	go test -run '^$' -bench BenchmarkStoreIngest -benchtime 5000x -count 3 ./core/jsstore
func BenchmarkStoreIngest(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("writers=%d", n), func(b *testing.B) { benchStoreIngest(b, n) })
	}
}

func benchStoreIngest(b *testing.B, writers int) {
	srv := natstest.Run(b)
	s := openTest(b, srv.URL(), core.Config{})
	js, name := rawStream(b, 1, srv.URL())
	p := newIngestPayloads()
	base := uint64(time.Now().UnixNano())
	benchVsRaw(b, writers, js, name, p, func(i, w int) error {
		h, data := p.event(uint64(i))
		binary.BigEndian.PutUint64(h.OpID[:8], base)
		binary.BigEndian.PutUint64(h.OpID[8:], uint64(i))
		_, err := sendOp(s, fmt.Sprintf("agent-%d", w), h, data)
		return err
	})
}

// benchVsRaw times b.N ops of op shared by writers (testutil.Share), then
// as many publishes of p's payloads by as many writers to js's stream
// name, the raw baseline, and reports both rates, the CPU an op and a
// raw publish cost the process, ratio-vs-raw (the store's ops/s over the
// raw publishes') and cpu-ratio-vs-raw (a raw publish's CPU over an
// op's).
func benchVsRaw(b *testing.B, writers int, js jetstream.JetStream, name string, p *ingestPayloads, op func(i, w int) error) {
	b.Helper()
	run := func(step func(i, w int) error) (time.Duration, time.Duration) {
		cpu0, t0 := selfCPU(b), time.Now()
		err := testutil.Share(b.N, writers, step)
		el, cpu := time.Since(t0), selfCPU(b)-cpu0
		if err != nil {
			b.Fatal(err)
		}
		return el, cpu
	}
	b.ResetTimer()
	storeTime, storeCPU := run(op)
	b.StopTimer()
	rawTime, rawCPU := run(func(i, w int) error {
		_, err := js.Publish(context.Background(), fmt.Sprintf("%s.w%d", name, w), p.data[i%64])
		return err
	})
	reportVsRaw(b, "", storeTime, storeCPU, rawTime, rawCPU)
}

// reportVsRaw reports the rates and CPU per op of the store's ops and of
// a raw baseline's (named "raw"+what in the metrics), measured in the
// same run.
func reportVsRaw(b *testing.B, what string, storeTime, storeCPU, rawTime, rawCPU time.Duration) {
	b.ReportMetric(float64(b.N)/storeTime.Seconds(), "ops/s")
	b.ReportMetric(float64(b.N)/rawTime.Seconds(), "raw"+what+"-ops/s")
	b.ReportMetric(rawTime.Seconds()/storeTime.Seconds(), "ratio-vs-raw"+what)
	b.ReportMetric(float64(storeCPU.Microseconds())/float64(b.N), "cpu-us/op")
	b.ReportMetric(float64(rawCPU.Microseconds())/float64(b.N), "raw-cpu-us/op")
	b.ReportMetric(float64(rawCPU)/float64(storeCPU), "cpu-ratio-vs-raw")
}

// BenchmarkStoreWholeOps is the store's share of BenchmarkCoreIngest's
// ops-per-stream=16 runs: N writers (agents) each apply their ops 16 at
// a time with ApplyWholeOps, as the server hands the store a stream's
// ops, with no network in front; beside them, in the same run, as many
// raw writers publish the same payloads to a stream of their own on the
// same server 16 asynchronous publishes at a time, then wait for their
// acks (BenchmarkCoreIngest's backlog baseline). It reports both rates,
// ratio-vs-raw-backlog (the store's ops/s over the raw writers'), the
// CPU an op and a raw publish cost the process (the NATS server is in
// it) and cpu-ratio-vs-raw (a raw publish's CPU over an op's).
//
//	go test -run '^$' -bench BenchmarkStoreWholeOps -benchtime 30000x -count 3 ./core/jsstore
func BenchmarkStoreWholeOps(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("writers=%d", n), func(b *testing.B) { benchStoreWholeOps(b, n) })
	}
}

func benchStoreWholeOps(b *testing.B, writers int) {
	srv := natstest.Run(b)
	s := openTest(b, srv.URL(), core.Config{})
	js, name := rawStream(b, 1, srv.URL())
	bjs, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncMaxPending(writers*ingestPerStream+1))
	if err != nil {
		b.Fatal(err)
	}
	p := newIngestPayloads()
	base := uint64(time.Now().UnixNano())
	// run hands out b.N ops in groups of ingestPerStream to writers, each
	// group to step.
	run := func(step func(ops []int, w int) error) (time.Duration, time.Duration) {
		groups := (b.N + ingestPerStream - 1) / ingestPerStream
		cpu0, t0 := selfCPU(b), time.Now()
		err := testutil.Share(groups, writers, func(g, w int) error {
			ops := make([]int, 0, ingestPerStream)
			for i := g * ingestPerStream; i < min(b.N, (g+1)*ingestPerStream); i++ {
				ops = append(ops, i)
			}
			return step(ops, w)
		})
		el, cpu := time.Since(t0), selfCPU(b)-cpu0
		if err != nil {
			b.Fatal(err)
		}
		return el, cpu
	}
	b.ResetTimer()
	storeTime, storeCPU := run(func(idx []int, w int) error {
		ops := make([]core.WholeOp, len(idx))
		for k, i := range idx {
			h, data := p.event(uint64(i))
			binary.BigEndian.PutUint64(h.OpID[:8], base)
			binary.BigEndian.PutUint64(h.OpID[8:], uint64(i))
			ops[k] = core.WholeOp{Header: h, Data: data}
		}
		for k, r := range s.ApplyWholeOps(fmt.Sprintf("agent-%d", w), ops) {
			if r.Err != nil || r.Result.Duplicate {
				return fmt.Errorf("op %s: %+v, %v", ops[k].Header.OpID, r.Result, r.Err)
			}
		}
		return nil
	})
	b.StopTimer()
	rawTime, rawCPU := run(func(ops []int, w int) error {
		return publishBacklog(bjs, fmt.Sprintf("%s.w%d", name, w), p, ops)
	})
	reportVsRaw(b, "-backlog", storeTime, storeCPU, rawTime, rawCPU)
}
