package jsstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// BenchmarkStoreEventReplicated is BenchmarkStoreIngest on a 3-node
// cluster in the process with replicas = 3, the layout a fleet runs:
// N writers commit small events through the store, beside as many raw
// publishers to an R3 stream of their own in the same run;
// ratio-vs-raw is the store's ops/s over the raw publishes',
// cpu-ratio-vs-raw the raw publish's CPU over the op's (the process holds
// the three NATS servers).
//
//	go test -run '^$' -bench StoreEventReplicated -benchtime 2000x -count 2 ./core/jsstore
func BenchmarkStoreEventReplicated(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("writers=%d", n), func(b *testing.B) { benchReplicated(b, n) })
	}
}

func benchReplicated(b *testing.B, writers int) {
	cl := natstest.RunCluster(b, 3)
	var s *Store
	testutil.WaitFor(b, 30*time.Second, "the store to open on the new cluster", func() bool {
		var err error
		s, err = Open(context.Background(), Config{URLs: cl.URLs(), Replicas: 3, Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1})
		return err == nil
	})
	b.Cleanup(func() { _ = s.Close() })
	nc, err := nats.Connect(joinURLs(cl.URLs()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	name := fmt.Sprintf("RAW%d", prefixes.Add(1))
	testutil.WaitFor(b, 30*time.Second, "the raw R3 stream", func() bool {
		_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage, Replicas: 3})
		return err == nil
	})
	p := newIngestPayloads()
	run := func(op func(i, w int) error) (time.Duration, time.Duration) {
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		cpu0, t0 := selfCPU(b), time.Now()
		for w := range writers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < b.N; i = int(next.Add(1) - 1) {
					if err := op(i, w); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		el, cpu := time.Since(t0), selfCPU(b)-cpu0
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		return el, cpu
	}
	b.ResetTimer()
	storeTime, storeCPU := run(func(i, w int) error {
		data, hash := p.data[i%64], p.hash[i%64]
		h := core.PartialHeader{OpID: storetest.OpID(uint64(i + 1)), Key: "bench/events", Kind: edgesync.EventOp, Priority: edgesync.Normal,
			Size: int64(len(data)), Hash: hash}
		_, err := sendOp(s, fmt.Sprintf("agent-%d", w), h, data)
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
	b.ReportMetric(float64(rawCPU)/float64(storeCPU), "cpu-ratio-vs-raw")
}
