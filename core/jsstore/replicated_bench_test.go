package jsstore

import (
	"context"
	"fmt"
	"testing"
	"time"

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
	js, name := rawStream(b, 3, cl.URLs()...)
	p := newIngestPayloads()
	benchVsRaw(b, writers, js, name, p, func(i, w int) error {
		h, data := p.event(uint64(i + 1))
		_, err := sendOp(s, fmt.Sprintf("agent-%d", w), h, data)
		return err
	})
}
