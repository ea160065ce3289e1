package agent

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestBackfillWaitsForUrgentWrite: the full data of an op whose summary
// the core has (backfill) starts under the write order too
// (writeorder.go): while a stream of a more urgent level started before
// it has not written its data, a normal op's backfill waits, as a normal
// op leased then does, and it starts once that data is written. In the
// dispatch that started a high op, dispatchOrdinary's call of
// dispatchBackfill (for the next op leased, or once nothing more was)
// started a normal backfill beside it, and the worker that wrote first
// had its data in packets first.
func TestBackfillWaitsForUrgentWrite(t *testing.T) {
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if _, err := ob.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: "ev/1", Priority: edgesync.Normal,
		Kind: edgesync.EventOp, Payload: bytes.NewReader(make([]byte, 1000))}); err != nil {
		t.Fatal(err)
	}
	ops, err := ob.Lease("core", 1, ordinary...)
	if err != nil || len(ops) != 1 {
		t.Fatalf("lease: %d ops, %v; want the op", len(ops), err)
	}
	mon, err := linkmon.NewMonitor(linkmon.Default(), linkmon.MonitorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := &session{e: &endpoint{mon: mon}, ob: ob, name: "core", log: hclog.NewNullLogger(), done: make(chan workerDone, 4),
		keys: map[string]bool{}, deferred: map[string][]edgesync.OpID{}, order: newWriteOrder()}
	s.pool.New = func() any { return newOpSender() }
	defer s.fullWake.stop()
	// The worker started goes no further than the payload: with the
	// outbox closed it releases the op, which fails, and reports.
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	p := linkmon.SyncParameters{ChunkSize: 64 << 10, Concurrency: 2}
	wrote := s.order.begin(edgesync.High) // a high op's worker, its data not written yet
	s.bf.push(ops[0])
	s.dispatchBackfill(p, last)
	if len(s.bf.queue) != 1 || s.inflight[slotSmall] != 0 {
		wrote()
		s.wg.Wait()
		t.Fatalf("a normal op's backfill started while a high op started before it had not written its data "+
			"(%d queued, %d in flight); want it to wait for that write", len(s.bf.queue), s.inflight[slotSmall])
	}
	wrote()
	s.dispatchBackfill(p, last)
	if len(s.bf.queue) != 0 || s.inflight[slotSmall] != 1 {
		t.Fatalf("after the high op's data was written: %d backfill ops queued, %d in flight; want it started",
			len(s.bf.queue), s.inflight[slotSmall])
	}
	select {
	case d := <-s.done:
		s.account(d)
	case <-time.After(10 * time.Second):
		t.Fatal("timed out after 10s waiting for the backfill worker's answer")
	}
	s.wg.Wait()
}
