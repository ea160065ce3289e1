package agent

import (
	"bytes"
	"fmt"
	"math"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/budget"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// budgetLink is a lossless 20 Mbit/s, 20 ms link: every byte the agent
// sends arrives, so linksim's count is the bytes sent.
func budgetLink() linksim.Profile {
	d := linksim.Direction{RateBps: 20_000_000, Delay: 10 * time.Millisecond, QueueBytes: 4 << 20}
	return linksim.Profile{Name: "budget-test", Up: d, Down: d}
}

// budgetAgent starts a core and an agent whose endpoint "core" has the
// budget b, on budgetLink, pinned to broadband with 64 KiB chunks sent at
// once and without summaries.
func budgetAgent(t testing.TB, b budget.Config, lane bool) (*Agent, *coretest.Core, func() *linksim.Conn) {
	t.Helper()
	return budgetAgentOn(t, b, budgetLink(), lane)
}

// budgetAgentOn is budgetAgent on the link prof.
func budgetAgentOn(t testing.TB, b budget.Config, prof linksim.Profile, lane bool) (*Agent, *coretest.Core, func() *linksim.Conn) {
	t.Helper()
	p, c, cfg := siteCore(t)
	cfg.Endpoints[0].Budget = &b
	opts, link := shaped(prof)
	opts.DisableLane = !lane
	a := startAgent(t, p, cfg, opts)
	iv, off, chunk := 20*time.Millisecond, false, 64<<10
	class := edgesync.Broadband
	if err := a.SetProfile(class, linkmon.Override{Interval: &iv, SummaryOnly: &off, ChunkSize: chunk, MinChunkSize: chunk}); err != nil {
		t.Fatal(err)
	}
	if err := a.Switch("core", linkmon.Pin{Class: &class}); err != nil {
		t.Fatal(err)
	}
	return a, c, link
}

// putRandom enqueues n incompressible ops of size bytes at priority p.
func putRandom(t testing.TB, a *Agent, p edgesync.Priority, n, size int, seed uint64) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for i := range n {
		key := fmt.Sprintf("%s/%d", p, i)
		data := testutil.RandomBytes(seed+uint64(i), size)
		out[key] = data
		enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: key, Priority: p, Kind: edgesync.StateOp, Payload: bytes.NewReader(data)})
	}
	return out
}

// heldBack waits until the budget holds priority p's data back (in the
// summary band below its stop, or at the stop) and nothing is in flight,
// and returns the budget's status then.
func heldBack(t *testing.T, a *Agent, p edgesync.Priority) BudgetStatus {
	t.Helper()
	var st BudgetStatus
	var last LinkStatus
	ok := testutil.Poll(30*time.Second, func() bool {
		ls, err := a.Status("core")
		if err != nil || ls.Budget == nil {
			return false
		}
		last = ls
		if len(ls.Transfers) > 0 {
			return false
		}
		st = *ls.Budget
		for _, h := range st.Held {
			if h.Priority == p && h.Verdict != budget.Send && h.Ops > 0 && h.Since != nil {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("after 30s the budget does not hold %s with no transfer in flight: budget %+v, transfers %+v, backlog %+v",
			p, last.Budget, last.Transfers, last.Backlog)
	}
	return st
}

// TestBudgetSharesAndReserve: on a real link, each priority stops near
// its share of the allowance (within the bytes one chunk boundary leaves
// in flight), the lower ones stay held, and a critical op still passes
// from the reserve once high has spent the rest.
func TestBudgetSharesAndReserve(t *testing.T) {
	for _, lane := range []bool{false, true} {
		t.Run(fmt.Sprintf("lane=%v", lane), func(t *testing.T) { sharesAndReserve(t, lane) })
	}
}

func sharesAndReserve(t *testing.T, lane bool) {
	const allowance = 4_000_000
	cfg := budget.Default(allowance, budget.Period{Kind: budget.Fixed, Length: time.Hour})
	cfg.Reserve = 400_000
	a, c, link := budgetAgent(t, cfg, lane)
	usable := float64(allowance - cfg.Reserve)
	// What a stop can leave in flight: the chunks the sender had started
	// (concurrency × 64 KiB) and their QUIC overhead.
	const slack = 400_000

	checkStop := func(p edgesync.Priority, st BudgetStatus) {
		t.Helper()
		stop := int64(cfg.Shares[p] * usable)
		if st.Spent < stop-int64(cfg.SummaryBand*allowance) || st.Spent > stop+slack {
			t.Fatalf("%s held at %d bytes spent; its stop is %d (allowed %d over); by priority %v, overhead %d", p, st.Spent, stop, slack, st.ByPriority, st.Overhead)
		}
		// Packets still queued on the link were counted as they left the
		// socket but not yet carried.
		up := link().Stats().Up
		if sent := int64(up.Bytes); st.Spent < sent*99/100 || st.Spent > sent*101/100+int64(up.Held)*1500 {
			t.Errorf("the budget counts %d bytes; linksim carried %d (%+v)", st.Spent, sent, up)
		}
	}

	putRandom(t, a, edgesync.Background, 4, 1<<20, 100)
	checkStop(edgesync.Background, heldBack(t, a, edgesync.Background))

	putRandom(t, a, edgesync.Normal, 4, 1<<20, 200)
	st := heldBack(t, a, edgesync.Normal)
	checkStop(edgesync.Normal, st)
	if h := heldBack(t, a, edgesync.Background); h.Spent != st.Spent {
		t.Logf("spend moved from %d to %d while both were held", st.Spent, h.Spent)
	}

	putRandom(t, a, edgesync.High, 2, 1<<20, 300)
	st = heldBack(t, a, edgesync.High)
	checkStop(edgesync.High, st)

	crit := putRandom(t, a, edgesync.Critical, 2, 100_000, 400)
	testutil.WaitFor(t, 20*time.Second, "the critical ops to reach the core from the reserve", func() bool {
		for key, want := range crit {
			got, err := c.Data("site-1", key)
			if err != nil || !bytes.Equal(got, want) {
				return false
			}
		}
		st, err := a.Outbox().Stats()
		bp := st.ByEndpointPriority["core"]
		return err == nil && (bp == nil || bp[edgesync.Critical].Ops == 0)
	})
	st2, err := a.Budget("core")
	if err != nil {
		t.Fatal(err)
	}
	if st2.Spent > allowance+slack {
		t.Errorf("critical spent to %d, past the allowance %d", st2.Spent, allowance)
	}
	if st2.ByPriority["critical"] < 200_000 || st2.ByPriority["background"] == 0 {
		t.Errorf("spend by priority %v: want critical's 200 kB and some background", st2.ByPriority)
	}
	bl, err := a.Outbox().Stats()
	if err != nil {
		t.Fatal(err)
	}
	if bp := bl.ByEndpointPriority["core"]; bp == nil || bp[edgesync.Background].Ops == 0 || bp[edgesync.High].Ops == 0 {
		t.Errorf("held ops left the outbox: %+v", bp)
	}
	fams := scrape(t, a.MetricsHandler())
	ep := map[string]string{"endpoint": "core"}
	if v, ok := value(fams, "edge_sync_budget_spent_bytes", ep); !ok || int64(v) < st2.Spent {
		t.Errorf("edge_sync_budget_spent_bytes = %v (%v); the budget had spent %d", v, ok, st2.Spent)
	}
	if v, ok := value(fams, "edge_sync_budget_held", map[string]string{"endpoint": "core", "priority": "background"}); !ok || v != 1 {
		t.Errorf("edge_sync_budget_held{priority=background} = %v (%v), want 1", v, ok)
	}
	if v, ok := value(fams, "edge_sync_budget_spent_priority_bytes", map[string]string{"endpoint": "core", "priority": "critical"}); !ok || v < 200_000 {
		t.Errorf("edge_sync_budget_spent_priority_bytes{priority=critical} = %v (%v), want ≥ 200 kB", v, ok)
	}
	if v, ok := value(fams, "edge_sync_budget_spent_class_bytes", map[string]string{"endpoint": "core", "class": "broadband"}); !ok || v == 0 {
		t.Errorf("edge_sync_budget_spent_class_bytes{class=broadband} = %v (%v), want the spend on the pinned class", v, ok)
	}
}

// TestBudgetRenewsOnTime: with a period of seconds, background ops held
// at their share go again as soon as the period renews, and the new
// period starts where the old one ended.
func TestBudgetRenewsOnTime(t *testing.T) {
	cfg := budget.Default(600_000, budget.Period{Kind: budget.Fixed, Length: 4 * time.Second})
	a, c, _ := budgetAgent(t, cfg, true)
	ops := putRandom(t, a, edgesync.Background, 3, 512<<10, 500)
	held := heldBack(t, a, edgesync.Background)
	end := held.PeriodEnd
	var renewed BudgetStatus
	testutil.WaitFor(t, 20*time.Second, "the background ops to send again in the next period", func() bool {
		st, err := a.Budget("core")
		if err != nil || st.PeriodStart.Before(end) || st.ByPriority["background"] == 0 {
			return false
		}
		renewed = st
		return true
	})
	if !renewed.PeriodStart.Equal(end) && renewed.PeriodStart.Sub(end) != cfg.Period.Length {
		t.Errorf("the next period starts at %v; the held one ended at %v", renewed.PeriodStart, end)
	}
	if late := time.Since(end); renewed.PeriodStart.Equal(end) && late > 2*time.Second+cfg.Period.Length {
		t.Errorf("sending resumed %v after the period ended", late)
	}
	// Everything arrives over the next periods, byte for byte.
	testutil.WaitFor(t, 60*time.Second, "every background op to reach the core", func() bool { return outboxEmpty(a) })
	for key, want := range ops {
		wantAtCore(t, c, key, want)
	}
}

// TestProbesSpendTheirShareOfTheAllowance: side by side on the same kind
// of link, the monitor of an endpoint with a budget of 100 MB an hour
// (222 kbit/s on average) probes far less than one without: its probe
// budget is a share of the allowance's rate, not of the link's 20 Mbit/s.
func TestProbesSpendTheirShareOfTheAllowance(t *testing.T) {
	free := func() *Agent {
		_, a, _ := shapedAgent(t, budgetLink())
		return a
	}()
	metered, _, _ := budgetAgent(t, budget.Default(100_000_000, budget.Period{Kind: budget.Fixed, Length: time.Hour}), true)
	probes := func(a *Agent) int64 { return mustStatus(t, a).ProbeBytes }
	testutil.WaitFor(t, 60*time.Second, "the free endpoint's monitor to probe 200 kB", func() bool { return probes(free) > 200_000 })
	f, m := probes(free), probes(metered)
	t.Logf("probe bytes: %d without a budget, %d with one", f, m)
	if m*4 > f {
		t.Errorf("the metered endpoint probed %d bytes while the free one probed %d; want under a quarter", m, f)
	}
}

// TestEconomyPicksTheCheapestEncoding: past the budget's economy share,
// the sender's parameters move to the best compression level and to
// deltas; before it, and without a budget, they are as published.
func TestEconomyPicksTheCheapestEncoding(t *testing.T) {
	b, err := budget.Open(budget.Default(1_000_000, budget.Period{Kind: budget.Month}), budget.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := &endpoint{budget: &endpointBudget{Budget: b}}
	in := linkmon.SyncParameters{Mode: edgesync.SyncFull, Compression: false, Level: 1, ChunkSize: 64 << 10}
	if got := e.economize(in); got != in {
		t.Fatalf("with the budget untouched the parameters changed: %+v", got)
	}
	if got := (&endpoint{}).economize(in); got != in {
		t.Fatalf("without a budget the parameters changed: %+v", got)
	}
	b.Count(500_000) // past the default economy of 40 %
	got := e.economize(in)
	if got.Mode != edgesync.SyncDeltaZstd || !got.Compression || got.Level != levels["best"] || got.ChunkSize != in.ChunkSize {
		t.Fatalf("past economy: %+v, want delta+zstd at the best level", got)
	}
}

// TestDrainETACountsTheBudget: ops the budget holds back drain when its
// period renews, and the drain estimate says so instead of the seconds
// the link alone would need.
func TestDrainETACountsTheBudget(t *testing.T) {
	cfg := budget.Default(600_000, budget.Period{Kind: budget.Fixed, Length: time.Hour})
	a, _, _ := budgetAgent(t, cfg, true)
	putRandom(t, a, edgesync.Background, 3, 512<<10, 500)
	held := heldBack(t, a, edgesync.Background)
	var eta time.Duration
	testutil.WaitFor(t, 30*time.Second, "a drain estimate for the held background ops", func() bool {
		ls, err := a.Status("core")
		if err != nil {
			return false
		}
		eta = ls.Summaries["background"].DrainETA
		return eta > 0
	})
	if left := time.Until(held.PeriodEnd); eta < left-time.Minute {
		t.Errorf("background drains in %v by the estimate; the budget holds it until its period ends in %v", eta, left)
	}
}

// BenchmarkBudgetAccounting sends 1 MiB ops through a lossless linksim
// relay with a budget on the endpoint, stops the agent, lets the relay
// deliver what it holds, and compares the budget's count with the bytes
// the relay carried up from the agent's socket in the same run
// (accounting-err-pct, goal ≤ 1 %). It also reports the spend per
// payload byte (wire-per-payload): what the budget pays for overhead.
//
//	go test -run '^$' -bench BudgetAccounting -benchtime 8x ./agent
func BenchmarkBudgetAccounting(b *testing.B) {
	sat := linksim.Direction{RateBps: 2_000_000, Delay: 300 * time.Millisecond, QueueBytes: 1 << 20}
	for _, tc := range []struct {
		name  string
		prof  linksim.Profile
		class edgesync.LinkClass
		lane  bool
	}{
		{"20mbit-lane", budgetLink(), edgesync.Broadband, true},
		{"20mbit-streams", budgetLink(), edgesync.Broadband, false},
		{"satellite-2mbit-600ms", linksim.Profile{Name: "sat", Up: sat, Down: sat}, edgesync.Satellite, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := testutil.NewPKI(b, "site-1")
			c := coretest.Start(b, p, nil)
			relay, err := linksim.NewRelay(linksim.RelayConfig{Target: c.Addr.String(), Profile: tc.prof})
			if err != nil {
				b.Fatal(err)
			}
			defer relay.Close()
			cfg := coretest.AgentConfig(b, p, relay.Addr().String())
			bc := budget.Default(1<<40, budget.Period{Kind: budget.Month})
			cfg.Endpoints[0].Budget = &bc
			a := startAgent(b, p, cfg, Options{DisableLane: !tc.lane})
			pinFast(b, a, tc.class, 20*time.Millisecond)
			var payload int64
			i := 0
			for b.Loop() {
				putRandom(b, a, edgesync.Normal, 1, 1<<20, uint64(1000+i))
				payload += 1 << 20
				i++
				testutil.WaitFor(b, 2*time.Minute, "the op to reach the core", func() bool { return outboxEmpty(a) })
			}
			b.StopTimer()
			if err := a.Close(); err != nil {
				b.Fatal(err)
			}
			testutil.WaitFor(b, 30*time.Second, "the relay to deliver what it holds", func() bool { return relay.Stats().Up.Held == 0 })
			e, err := a.endpoint("core")
			if err != nil {
				b.Fatal(err)
			}
			st := e.budget.Status() // the agent is closed: its outbox is, too
			spent, carried := st.Spent, int64(relay.Stats().Up.Bytes)
			errPct := math.Abs(float64(spent-carried)) / float64(carried) * 100
			b.ReportMetric(errPct, "accounting-err-pct")
			b.ReportMetric(float64(spent)/float64(payload), "wire-per-payload")
			b.Logf("%s: budget counted %d bytes, linksim carried %d (%.3f %% apart), payload %d", tc.name, spent, carried, errPct, payload)
		})
	}
}
