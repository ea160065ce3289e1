package control

import (
	"bytes"
	"context"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/outbox"
)

// BenchmarkControlSend streams 64 KiB state ops through the unix socket and
// reports its cost against Agent.Enqueue of the same ops, measured in the
// same run (x_direct: how many times slower the API path is).
func BenchmarkControlSend(b *testing.B) {
	a := offlineAgent(b, nil)
	env := startControl(b, a, config.Control{MaxBodyBytes: 1 << 20})
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	p := UploadParams{Key: "bench", Kind: "state", Priority: "normal"}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := env.c.Upload(ctx, CmdSend, p, bytes.NewReader(data), int64(len(data))); err != nil {
			b.Fatal(err)
		}
	}
	viaAPI := b.Elapsed()
	start := time.Now()
	for range b.N {
		if _, err := a.Enqueue(ctx, outbox.NewOp{Endpoint: "core", Key: "bench", Kind: edgesync.StateOp, Priority: edgesync.Normal, Payload: bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
	}
	direct := time.Since(start)
	b.ReportMetric(float64(viaAPI)/float64(direct), "x_direct")
}
