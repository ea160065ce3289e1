package jsstore

import (
	"fmt"
	"slices"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// benchIngestBacklog is BenchmarkCoreIngest's backlog mode: agent w's
// backlog is ops w, w+agents, w+2·agents, ... of b.N, sent per to a
// stream, each stream's answers awaited before the next. Beside the
// core, the two raw baselines: each writer waiting for each write (raw),
// and each writer writing per of its backlog at once (rawBacklog).
func benchIngestBacklog(b *testing.B, pk *testutil.PKI, clients []*ingestClient, payloads *ingestPayloads, per int,
	raw func(i, writer int) error, rawBacklog func(ops []int, writer int) error) {
	agents := len(clients)
	// backlogs[w] are writer w's ops, in streams (or batches) of per.
	backlogs := make([][][]int, agents)
	for w := range agents {
		var mine []int
		for i := w; i < b.N; i += agents {
			mine = append(mine, i)
		}
		backlogs[w] = slices.Collect(slices.Chunk(mine, per))
	}
	lat := make([][]time.Duration, agents)
	coreTime, coreCPU, pkts := ingestWindow(b, clients, func() error {
		return testutil.Share(agents, agents, func(w, _ int) error {
			for _, ops := range backlogs[w] {
				t0 := time.Now()
				if err := clients[w].sendPacked(ops, payloads); err != nil {
					return err
				}
				d := time.Since(t0)
				for range ops {
					lat[w] = append(lat[w], d)
				}
			}
			return nil
		})
	})

	// The raw baseline of the other sub-benchmarks: each writer waits for
	// each write.
	rawTime, rawCPU := timed(b, func() error { return testutil.Share(b.N, agents, raw) })
	// The stricter one: each writer writes per of its backlog at once.
	backlogTime, _ := timed(b, func() error {
		return testutil.Share(agents, agents, func(w, _ int) error {
			for _, ops := range backlogs[w] {
				if err := rawBacklog(ops, w); err != nil {
					return err
				}
			}
			return nil
		})
	})

	// The transport's floor: the same backlogs through plain quic-go
	// streams.
	floor := measureQUICFloorBacklog(b, pk, backlogs, floorOp(b, payloads))

	rawRate := reportIngest(b, lat, coreTime, coreCPU, rawTime, rawCPU, pkts)
	coreRate := float64(b.N) / coreTime.Seconds()
	backlogRate := float64(b.N) / backlogTime.Seconds()
	b.ReportMetric(backlogRate, "raw-backlog-ops/s")
	b.ReportMetric(coreRate/backlogRate, "ratio-vs-raw-backlog")
	floor.report(b, rawRate, coreRate)
	b.ReportMetric(floor.rate/backlogRate, "quic-vs-raw-backlog")
}

// sendPacked sends the ops ops (payload i%64 each) on one stream, in one
// write, as the agent sends several ops per stream, and waits for their
// answers: an Ack of each, in order.
func (c *ingestClient) sendPacked(ops []int, p *ingestPayloads) error {
	c.frame = c.frame[:0]
	ids := make([]edgesync.OpID, len(ops))
	for k, i := range ops {
		var err error
		if ids[k], err = c.appendOp(i, p); err != nil {
			return err
		}
	}
	str, err := c.writeStream()
	if err != nil {
		return err
	}
	defer str.CancelRead(0)
	for k, id := range ids {
		f, err := wire.ReadFrame(str, wire.MaxFrameSize)
		if err != nil {
			return fmt.Errorf("op %s, %d of %d on its stream: %w", id, k+1, len(ids), err)
		}
		switch f := f.(type) {
		case *wire.Ack:
			if len(f.IDs) != 1 || f.IDs[0] != id {
				return fmt.Errorf("op %s, %d of %d on its stream: ACK of %v", id, k+1, len(ids), f.IDs)
			}
		case *wire.Nack:
			return fmt.Errorf("op %s refused: %s %s", id, f.Code, f.Msg)
		default:
			return fmt.Errorf("op %s answered with %s", id, f.Type())
		}
	}
	return nil
}
