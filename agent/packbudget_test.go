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
		took := criticalAtCore(t, a, c, i)
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

// TestPackedBacklogFillsLink: a backlog of 2,000 small ops put before
// Start, on the LTE-like link (10 Mbit/s up, 60 ms RTT) whose figures the
// link monitor knows from a previous run, drains within twice the time
// of the same bytes put as one op, in the same test. Packs fill the link
// as a large op does: the packed bytes in flight cover the link's
// bandwidth-delay product (packbudget.go). Bounded by what the link
// carries in 5 ms, 32 KiB at least, the backlog moved about a budget
// per round trip, some 5 times slower than the one op. Where the machine
// itself is slower than that (CI under -race beside other tests: 3.4
// times), the bound is what the same drain takes through a link that is
// no limit, plus the link's time.
func TestPackedBacklogFillsLink(t *testing.T) {
	if testing.Short() {
		t.Skip("2 MB through a 10 Mbit/s link, twice")
	}
	dc := drainCases()[0]
	dc.ops = 2000
	payloads := make([][]byte, dc.ops)
	for i := range payloads {
		payloads[i] = testutil.RandomBytes(uint64(i), 1<<10)
	}
	one := packedDrain(t, dc, payloads, true).took
	took := packedDrain(t, dc, payloads, false).took
	// The same backlog, the same class's parameters, through a link that
	// is no limit: what this machine's CPU takes to move it (under -race
	// and other jobs, several seconds).
	fast := dc
	fast.prof = symmetricLink("1gbit-1ms", 1_000_000_000, time.Millisecond, 0)
	cpu := packedDrain(t, fast, payloads, false).took
	linkTime := time.Duration(float64(dc.ops<<10*8) / float64(dc.prof.Up.RateBps) * float64(time.Second))
	t.Logf("%d ops of 1 KiB drained in %v, the same bytes as one op in %v, through a link that is no limit in %v; the link carries them in %v",
		dc.ops, took, one, cpu, linkTime)
	// Twice the one op, unless the machine alone takes longer than that
	// less the link's time: a drain held by the CPU is no link left idle.
	if bound := max(2*one, cpu+linkTime); took > bound {
		t.Errorf("a backlog of %d small ops took %v to drain through %s, %.1f times the same bytes as one op (%v), with %v of it the machine's (the same drain through a link that is no limit); want at most %v",
			dc.ops, took.Round(time.Millisecond), dc.prof.Name, took.Seconds()/one.Seconds(), one.Round(time.Millisecond), cpu.Round(time.Millisecond), bound.Round(time.Millisecond))
	}
}

// criticalAtCore puts critical op i in a's outbox and returns how long it
// took to reach core c.
func criticalAtCore(tb testing.TB, a *Agent, c *coretest.Core, i int) time.Duration {
	tb.Helper()
	start := time.Now()
	crit := enqueue(tb, a, outbox.NewOp{Endpoint: "core", Key: "alarm", Priority: edgesync.Critical, Kind: edgesync.EventOp,
		Payload: bytes.NewReader(fmt.Appendf(nil, "alarm %d", i))})
	testutil.WaitFor(tb, time.Minute, "the critical op at the core", func() bool {
		ok, _ := c.Store.Applied("site-1", crit.ID)
		return ok
	})
	return time.Since(start)
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
	s, lease := budgetSession(t, 1)
	first := lease()
	s.inflight[slotSmall]++
	s.packed(first)
	released, answer := make(chan struct{}), make(chan struct{})
	s.spawn([]outbox.Op{first}, slotSmall, false, true, func(_, _ func()) []outcome {
		s.release(first.ID) // as settle does: the op goes again
		close(released)
		<-answer // the rest of its pack settles
		return []outcome{outDone}
	})
	<-released
	again := lease() // the session's loop runs meanwhile
	s.inflight[slotSmall]++
	s.packed(again)
	s.spawn([]outbox.Op{again}, slotSmall, false, true, func(_, _ func()) []outcome { return []outcome{outDone} })
	close(answer)
	for i := range 2 {
		accountNext(t, s, fmt.Sprintf("worker answer %d of 2", i+1))
	}
	s.wg.Wait()
	if s.packBytes != 0 || !s.packFits(first, minPackBudget, true) {
		t.Fatalf("packed bytes in flight after both answers: %d, want 0 (a new pack may open: %v)",
			s.packBytes, s.packFits(first, minPackBudget, true))
	}
}

// TestPackBudgetBackAtAnswer: a pack's bytes come back to the budget as
// soon as the core has answered it, before its worker settles its ops
// with the outbox (15-95 ms for 32 ops): counted until then, a pack held
// the budget while nothing of it was on the link, and on a 10 Mbit/s
// link of 60 ms the packs in flight carried 6 Mbit/s. The ops' own
// reports then give back nothing more.
func TestPackBudgetBackAtAnswer(t *testing.T) {
	s, lease := budgetSession(t, 2)
	ops := []outbox.Op{lease(), lease()}
	s.inflight[slotSmall]++
	for _, op := range ops {
		s.packed(op)
	}
	answered, settle := make(chan struct{}), make(chan struct{})
	s.spawn(ops, slotSmall, false, true, func(_, done func()) []outcome {
		done() // the core's answers came
		close(answered)
		<-settle // the outbox settles the ops
		return []outcome{outDone, outDone}
	})
	<-answered
	accountNext(t, s, "the pack's answer")
	if s.packBytes != 0 {
		t.Fatalf("packed bytes in flight once the core answered the pack, its ops not yet settled: %d, want 0", s.packBytes)
	}
	close(settle)
	for i := range ops {
		accountNext(t, s, fmt.Sprintf("op report %d of %d", i+1, len(ops)))
	}
	s.wg.Wait()
	if s.packBytes != 0 || s.inflight[slotSmall] != 0 {
		t.Fatalf("after the ops' reports: %d packed bytes and %d small slots in flight, want 0 and 0", s.packBytes, s.inflight[slotSmall])
	}
}

// budgetSession is a session on a real outbox holding n normal ops of
// 20,000 B, with no connection, and a function that leases the next.
func budgetSession(t *testing.T, n int) (*session, func() outbox.Op) {
	t.Helper()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	s := &session{ob: ob, name: "core", log: hclog.NewNullLogger(), done: make(chan workerDone, 4),
		keys: map[string]bool{}, deferred: map[string][]edgesync.OpID{}, order: newWriteOrder()}
	for i := range n {
		if _, err := ob.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("ev/%d", i), Priority: edgesync.Normal,
			Kind: edgesync.EventOp, Payload: bytes.NewReader(make([]byte, 20_000))}); err != nil {
			t.Fatal(err)
		}
	}
	return s, func() outbox.Op {
		t.Helper()
		ops, err := ob.Lease("core", 1, ordinary...)
		if err != nil || len(ops) != 1 {
			t.Fatalf("lease: %d ops, %v; want an op", len(ops), err)
		}
		return ops[0]
	}
}

// accountNext accounts the session's next worker report, failing t if
// none comes within 10 s; what names it.
func accountNext(t *testing.T, s *session, what string) {
	t.Helper()
	select {
	case d := <-s.done:
		s.account(d)
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out after 10s waiting for %s", what)
	}
}

// TestPackBudgetBounds: whatever the median bandwidth and the RTT read,
// the pack budget is within [minPackBudget, maxPackBudget], and within
// them it is what the bandwidth carries in the RTT and packWindow, and
// minPackBudget more.
// A median of two samples with one timestamp is +Inf or NaN; converted to
// an integer unclamped it gave the floor on amd64 and no bound on arm64,
// and a huge finite reading gave a budget past what the small slots can
// hold. An RTT unmeasured (0) or negative counts as none, one of the
// largest Duration does not wrap around.
func TestPackBudgetBounds(t *testing.T) {
	cases := []struct {
		name string
		bw   float64 // bit/s
		rtt  time.Duration
		want int64 // 0: anywhere within the bounds
	}{
		{"unmeasured", 0, 0, minPackBudget},
		{"unmeasured bandwidth, 600 ms", 0, 600 * time.Millisecond, minPackBudget},
		{"negative", -1e6, 60 * time.Millisecond, minPackBudget},
		{"NaN", math.NaN(), 60 * time.Millisecond, minPackBudget},
		{"+Inf", math.Inf(1), 60 * time.Millisecond, minPackBudget},
		{"-Inf", math.Inf(-1), 60 * time.Millisecond, minPackBudget},
		{"10 Mbit/s, RTT unmeasured", 10e6, 0, 6_250 + minPackBudget},
		{"10 Mbit/s, negative RTT", 10e6, -time.Second, 6_250 + minPackBudget},
		{"100 Mbit/s, RTT unmeasured", 100e6, 0, 62_500 + minPackBudget},
		{"1 Mbit/s, 40 ms", 1e6, 40 * time.Millisecond, 5_625 + minPackBudget},
		{"10 Mbit/s, 60 ms", 10e6, 60 * time.Millisecond, 81_250 + minPackBudget},
		{"20 Mbit/s, 20 ms", 20e6, 20 * time.Millisecond, 62_500 + minPackBudget},
		{"2 Mbit/s, 600 ms", 2e6, 600 * time.Millisecond, 151_250 + minPackBudget},
		{"10 Mbit/s, 600 ms", 10e6, 600 * time.Millisecond, 756_250 + minPackBudget},
		{"10 Gbit/s, 1 s", 10e9, time.Second, maxPackBudget},
		{"10 Mbit/s, the largest RTT", 10e6, math.MaxInt64, maxPackBudget},
		{"1 Tbit/s", 1e12, 0, maxPackBudget},
		{"huge", 1e300, time.Millisecond, maxPackBudget},
		{"max float", math.MaxFloat64, math.MaxInt64, maxPackBudget},
	}
	for _, tc := range cases {
		got := packBudgetAt(tc.bw, tc.rtt)
		if got < minPackBudget || got > maxPackBudget || (tc.want != 0 && got != tc.want) {
			t.Errorf("%s (%g bit/s, RTT %v): budget %d, want %d within [%d, %d]", tc.name, tc.bw, tc.rtt, got, tc.want, minPackBudget, maxPackBudget)
		}
	}
}
