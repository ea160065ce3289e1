package agent

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestCriticalNotBehindPacks: a backlog of small normal ops goes out in
// packs on a slow uplink with a deep queue (1 Mbit/s, 40 ms RTT, 2 s of
// queue), and critical ops put meanwhile reach the core within 600 ms:
// the packed bytes in flight are bounded (packbudget.go), so a critical
// op waits behind at most that much, not behind every pack of the
// backlog at once.
func TestCriticalNotBehindPacks(t *testing.T) {
	if testing.Short() {
		t.Skip("a 1 MB backlog on a 1 Mbit/s link")
	}
	up := linksim.Direction{RateBps: 1_000_000, Delay: 20 * time.Millisecond, QueueDelay: 2 * time.Second}
	down := up
	down.RateBps = 10_000_000
	prof := linksim.Profile{Name: "slow-deep-queue", Up: up, Down: down}
	const n, size = 1000, 1000
	ops := make([]workloadOp, n)
	for i := range ops {
		ops[i] = workloadOp{key: fmt.Sprintf("ev/%d", i), kind: edgesync.EventOp, prio: edgesync.Normal,
			payload: testutil.RandomBytes(uint64(i), size)}
	}
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	opts, _ := shaped(prof)
	a, _ := startWithBacklog(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), opts, ops)
	// The sender's congestion window has grown into the link's queue by
	// the time a third of the backlog is stored.
	testutil.WaitFor(t, time.Minute, "a third of the backlog at the core", func() bool {
		st, err := a.Outbox().Stats()
		return err == nil && st.Total.Ops <= 2*n/3
	})
	const bound = 600 * time.Millisecond
	for i := range 3 {
		start := time.Now()
		crit := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "alarm", Priority: edgesync.Critical, Kind: edgesync.EventOp,
			Payload: bytes.NewReader(fmt.Appendf(nil, "alarm %d", i))})
		testutil.WaitFor(t, time.Minute, "the critical op at the core", func() bool {
			ok, _ := c.Store.Applied("site-1", crit.ID)
			return ok
		})
		took := time.Since(start)
		st, err := a.Outbox().Stats()
		if err != nil {
			t.Fatal(err)
		}
		left := st.Total.Ops
		t.Logf("critical op %d at the core after %v; %d ops of the backlog wait", i, took, left)
		if left == 0 {
			t.Fatalf("the backlog drained before critical op %d reached the core: the test measured nothing", i)
		}
		if took > bound {
			t.Errorf("critical op %d took %v to reach the core behind a packed backlog; want at most %v", i, took, bound)
		}
	}
	testutil.WaitFor(t, 2*time.Minute, "the backlog to drain", func() bool { return outboxEmpty(a) })
}

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
		keys: map[string]bool{}, deferred: map[string][]edgesync.OpID{}, order: newWriteOrder()}
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
	s.spawn([]outbox.Op{first}, slotSmall, false, true, func(func()) []outcome {
		s.release(first.ID) // as settle does: the op goes again
		close(released)
		<-answer // the rest of its pack settles
		return []outcome{outDone}
	})
	<-released
	again := lease() // the session's loop runs meanwhile
	s.inflight[slotSmall]++
	s.packed(again)
	s.spawn([]outbox.Op{again}, slotSmall, false, true, func(func()) []outcome { return []outcome{outDone} })
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

// TestPackBudgetBounds: whatever the link monitor's median bandwidth
// reads, the pack budget is within [minPackBudget, maxPackBudget]. A
// median of two samples with one timestamp is +Inf or NaN; converted to
// an integer unclamped it gave the floor on amd64 and no bound on arm64,
// and a huge finite reading gave a budget past what the small slots can
// hold.
func TestPackBudgetBounds(t *testing.T) {
	cases := []struct {
		name string
		bw   float64 // bit/s
		want int64   // 0: anywhere within the bounds
	}{
		{"unmeasured", 0, minPackBudget},
		{"negative", -1e6, minPackBudget},
		{"NaN", math.NaN(), minPackBudget},
		{"+Inf", math.Inf(1), minPackBudget},
		{"-Inf", math.Inf(-1), minPackBudget},
		{"10 Mbit/s", 10e6, minPackBudget},
		{"100 Mbit/s", 100e6, 62_500},
		{"1 Tbit/s", 1e12, maxPackBudget},
		{"huge", 1e300, maxPackBudget},
		{"max float", math.MaxFloat64, maxPackBudget},
	}
	for _, tc := range cases {
		got := packBudgetAt(tc.bw)
		if got < minPackBudget || got > maxPackBudget || (tc.want != 0 && got != tc.want) {
			t.Errorf("%s (%g bit/s): budget %d, want %d within [%d, %d]", tc.name, tc.bw, got, tc.want, minPackBudget, maxPackBudget)
		}
	}
}
