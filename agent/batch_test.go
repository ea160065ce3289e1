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

// TestBatcherDecisions walks the batch-interval policy through its cases
// (docs/design.md#batch-interval) with explicit times.
func TestBatcherDecisions(t *testing.T) {
	const chunk = 256 << 10
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	waiting := func(ops int, bytes int64) func(int64) (int, int64) {
		return func(int64) (int, int64) { return ops, bytes }
	}
	var b batcher
	steps := []struct {
		name     string
		at       time.Duration // after t0
		interval time.Duration
		ops      int
		bytes    int64
		want     bool
		holds    int64 // the counter after the step
	}{
		{"no batch yet: a small op goes at once", 0, 30 * time.Second, 1, 100, true, 0},
		// (the batch drains at t0+1s: see below)
		{"within the interval a small op waits", 5 * time.Second, 30 * time.Second, 1, 100, false, 1},
		{"small ops that together fill a chunk go", 6 * time.Second, 30 * time.Second, 40, chunk, true, 1},
		{"one op of more than a chunk goes", 7 * time.Second, 30 * time.Second, 1, 4 * chunk, true, 1},
		{"nothing waiting is no hold", 8 * time.Second, 30 * time.Second, 0, 0, false, 1},
		{"interval 0 is best effort", 9 * time.Second, 0, 1, 100, true, 1},
		{"a shorter interval that has passed lets it go", 9 * time.Second, 5 * time.Second, 1, 100, true, 1},
		{"the interval after the last batch has passed", 31 * time.Second, 30 * time.Second, 1, 100, true, 1},
	}
	b.drained(t0.Add(time.Second), true)
	for _, st := range steps {
		if st.at == 0 {
			// Before any batch: the zero batcher.
			var fresh batcher
			if got := fresh.goNow(t0, st.interval, chunk, waiting(st.ops, st.bytes)); got != st.want {
				t.Errorf("%s: goNow = %v, want %v", st.name, got, st.want)
			}
			continue
		}
		if got := b.goNow(t0.Add(st.at), st.interval, chunk, waiting(st.ops, st.bytes)); got != st.want {
			t.Errorf("%s: goNow = %v, want %v", st.name, got, st.want)
		}
		if got := b.holds.Load(); got != st.holds {
			t.Errorf("%s: holds = %d, want %d", st.name, got, st.holds)
		}
	}
	if due := b.due(30 * time.Second); !due.Equal(t0.Add(31 * time.Second)) {
		t.Errorf("due = %v, want the interval after the last batch (%v)", due, t0.Add(31*time.Second))
	}

	// A batch that sent nothing (it found no ops, or only ops held for
	// their summary) does not restart the interval.
	b.drained(t0.Add(40*time.Second), false)
	if !b.goNow(t0.Add(41*time.Second), 30*time.Second, chunk, waiting(1, 100)) {
		t.Error("an empty batch restarted the interval: a small op 40 s after the last batch that sent data waits")
	}
	b.drained(t0.Add(50*time.Second), true)
	if b.goNow(t0.Add(51*time.Second), 30*time.Second, chunk, waiting(1, 100)) {
		t.Error("a batch that sent data did not restart the interval")
	}
	if n := b.batches.Load(); n != 2 {
		t.Errorf("batches = %d, want 2 (those that sent data)", n)
	}
}

// TestBatcherWeighs: the weight of what waits is what the sender would
// send under the parameters: an op's payload, its summary under
// summary-only parameters, nothing once its summary is at the core; and
// weighing leaves every op unleased.
func TestBatcherWeighs(t *testing.T) {
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	s := &session{ob: ob, name: "core", log: hclog.NewNullLogger()}
	put := func(prio edgesync.Priority, size int, summary string) outbox.Op {
		op, err := ob.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: "k", Priority: prio, Kind: edgesync.EventOp,
			Payload: bytes.NewReader(make([]byte, size)), Summary: []byte(summary)})
		if err != nil {
			t.Fatal(err)
		}
		return op
	}
	big := put(edgesync.Normal, 1<<20, "rows=10")
	put(edgesync.High, 100, "")
	full := linkmon.SyncParameters{ChunkSize: 256 << 10}
	summaries := linkmon.SyncParameters{ChunkSize: 256 << 10, SummaryOnly: true, Summaries: linkmon.DefaultSummaries}
	for _, tc := range []struct {
		name  string
		p     linkmon.SyncParameters
		ops   int
		bytes int64
	}{
		{"full data", full, 2, 1<<20 + 100},
		// Its summary goes first, then its full data as backfill.
		{"summary only: the normal op weighs its summary and its data", summaries, 2, 100 + int64(len("rows=10")) + 1<<20},
	} {
		ops, n := s.weigher(tc.p)(1 << 30)
		if ops != tc.ops || n != tc.bytes {
			t.Errorf("%s: weighed %d ops, %d bytes; want %d, %d", tc.name, ops, n, tc.ops, tc.bytes)
		}
	}
	if _, err := ob.Lease("core", 1, edgesync.High); err != nil {
		t.Fatal(err)
	}
	leased, err := ob.Lease("core", 10, ordinary...)
	if err != nil || len(leased) != 1 || leased[0].ID != big.ID {
		t.Fatalf("after weighing, leasing got %v (%v); want the normal op, unleased by the weighing", leased, err)
	}
	if err := ob.MarkSummarySent(big.ID); err != nil {
		t.Fatal(err)
	}
	if err := ob.Release(big.ID); err != nil {
		t.Fatal(err)
	}
	if ops, n := s.weigher(summaries)(1 << 30); ops != 1 || n != 1<<20 {
		t.Errorf("an op whose summary is at the core (and the leased high op) weighed %d ops, %d bytes; want its full data, which backfills", ops, n)
	}
}
