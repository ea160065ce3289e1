package agent

import (
	"math"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/budget"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

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
