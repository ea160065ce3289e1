package jsstore

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
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
	js, name := rawStream(b, srv.URL())
	p := newIngestPayloads()
	run := func(op func(i, w int) error) (time.Duration, time.Duration) {
		cpu0, t0 := selfCPU(b), time.Now()
		err := testutil.Share(b.N, writers, op)
		el, cpu := time.Since(t0), selfCPU(b)-cpu0
		if err != nil {
			b.Fatal(err)
		}
		return el, cpu
	}
	base := uint64(time.Now().UnixNano())
	b.ResetTimer()
	storeTime, storeCPU := run(func(i, w int) error {
		data, hash := p.data[i%64], p.hash[i%64]
		var id edgesync.OpID
		binary.BigEndian.PutUint64(id[:8], base)
		binary.BigEndian.PutUint64(id[8:], uint64(i))
		agent := fmt.Sprintf("agent-%d", w)
		h := core.PartialHeader{OpID: id, Key: "bench/events", Kind: edgesync.EventOp, Priority: edgesync.Normal,
			Size: int64(len(data)), Hash: hash}
		if _, _, err := s.BeginPartial(agent, h); err != nil {
			return err
		}
		if err := s.WritePartial(agent, id, 0, data); err != nil {
			return err
		}
		_, err := s.CommitPartial(agent, id)
		return err
	})
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
