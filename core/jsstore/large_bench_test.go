package jsstore

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
)

// BenchmarkLargeOp measures why large data is chunked in a stream of the
// store's own rather than put in JetStream's object store: a 16 MiB op
// applied through the store (its chunks written as they arrive, then read
// back for the commit's SHA-256 check) against one object-store Put of
// the same bytes in the same run. An object-store layout would pay that
// Put on top of keeping the partial data resumable elsewhere, because an
// object-store Put cannot be continued by another process: ratio-vs-put
// below 2 means chunking in place is the cheaper of the two.
//
//	go test -run '^$' -bench BenchmarkLargeOp -benchtime 5x -count 3 ./core/jsstore
func BenchmarkLargeOp(b *testing.B) {
	const size = 16 << 20
	srv := natstest.Run(b)
	s := openTest(b, srv.URL(), core.Config{})
	js, _ := rawStream(b, 1, srv.URL())
	ctx := context.Background()
	obs, err := js.CreateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: fmt.Sprintf("BENCH%d", prefixes.Add(1))})
	if err != nil {
		b.Fatal(err)
	}
	data := storetest.Payload(1, size)
	var storeTime, putTime time.Duration
	n := uint64(0)
	for b.Loop() {
		n++
		t0 := time.Now()
		h := storetest.Header(storetest.OpID(n), edgesync.StateOp, "big", data)
		if _, err := s.Apply("a", h, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := obs.Put(ctx, jetstream.ObjectMeta{Name: "big"}, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		storeTime += t1.Sub(t0)
		putTime += time.Since(t1)
	}
	mb := float64(size) / (1 << 20) * float64(n)
	b.ReportMetric(mb/storeTime.Seconds(), "store-MiB/s")
	b.ReportMetric(mb/putTime.Seconds(), "objput-MiB/s")
	b.ReportMetric(float64(storeTime)/float64(putTime), "ratio-vs-put")
}
