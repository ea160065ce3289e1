package agent

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestPackBudgetOpLeasedAgain: a packed op's worker gives it back to the
// outbox as it settles it (a refusal sent again at once, a stream that
// broke), and reports it to the session only once the rest of its pack
// is settled. Meanwhile the session may lease the op again and pack it
// in another pack. Each worker's answer must give back what its own
// lease counted: the packed bytes in flight come back to zero. Counted
// by op ID, the first answer took the second lease's count and the
// second gave back nothing; an op of 20,000 B left counted past half the
// smallest budget opens no ordinary pack again for the session's life.
func TestPackBudgetOpLeasedAgain(t *testing.T) {
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	s := &session{ob: ob, name: "core", log: hclog.NewNullLogger(), done: make(chan workerDone, 4),
		keys: map[string]bool{}, deferred: map[string][]edgesync.OpID{}}
	if _, err := ob.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: "ev/1", Priority: edgesync.Normal,
		Kind: edgesync.EventOp, Payload: bytes.NewReader(make([]byte, 20_000))}); err != nil {
		t.Fatal(err)
	}
	lease := func() outbox.Op {
		t.Helper()
		ops, err := ob.Lease("core", 1, ordinary...)
		if err != nil || len(ops) != 1 {
			t.Fatalf("lease: %d ops, %v; want the op", len(ops), err)
		}
		return ops[0]
	}
	first := lease()
	s.inflight[slotSmall]++
	s.packed(first)
	released, answer := make(chan struct{}), make(chan struct{})
	s.spawn([]outbox.Op{first}, slotSmall, false, func() []outcome {
		s.release(first.ID) // as settle does: the op goes again
		close(released)
		<-answer // the rest of its pack settles
		return []outcome{outDone}
	})
	<-released
	again := lease() // the session's loop runs meanwhile
	s.inflight[slotSmall]++
	s.packed(again)
	s.spawn([]outbox.Op{again}, slotSmall, false, func() []outcome { return []outcome{outDone} })
	close(answer)
	for i := range 2 {
		select {
		case d := <-s.done:
			s.account(d)
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out after 10s waiting for worker answer %d of 2", i+1)
		}
	}
	s.wg.Wait()
	if s.packBytes != 0 || !s.packFits(first, minPackBudget, true) {
		t.Fatalf("packed bytes in flight after both answers: %d, want 0 (a new pack may open: %v)",
			s.packBytes, s.packFits(first, minPackBudget, true))
	}
}
