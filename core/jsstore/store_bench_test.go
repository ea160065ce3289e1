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
	b.ReportMetric(float64(b.N)/storeTime.Seconds(), "ops/s")
	b.ReportMetric(float64(b.N)/rawTime.Seconds(), "raw-ops/s")
	b.ReportMetric(rawTime.Seconds()/storeTime.Seconds(), "ratio-vs-raw")
	b.ReportMetric(float64(storeCPU.Microseconds())/float64(b.N), "cpu-us/op")
	b.ReportMetric(float64(rawCPU.Microseconds())/float64(b.N), "raw-cpu-us/op")
	b.ReportMetric(float64(rawCPU)/float64(storeCPU), "cpu-ratio-vs-raw")
}
