package statuspage

import (
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/budget"
)

// TestPageShowsTheBudget: an endpoint with a budget gets a "Data
// budget" part with its spend, forecast and what is held back; one
// without gets none.
func TestPageShowsTheBudget(t *testing.T) {
	now := time.Now()
	since := now.Add(-90 * time.Second)
	st := agent.LinkStatus{Endpoint: "core", Backlog: map[string]agent.Backlog{}, Transfers: []agent.Transfer{},
		Budget: &agent.BudgetStatus{Endpoint: "core", Zone: "UTC", Status: budget.Status{
			Allowance: 50 << 30, Reserve: 2560 << 20, Period: budget.Period{Kind: budget.Month},
			PeriodStart: now.Add(-24 * time.Hour), PeriodEnd: now.Add(24 * time.Hour), Spent: 30 << 30, Left: 20 << 30, Forecast: 60 << 30,
		}, Held: []agent.BudgetHeld{{Priority: edgesync.Background, Verdict: budget.Hold, Ops: 3, Bytes: 3 << 20, Since: &since}}}}
	page := renderEndpoint(t, st, now)
	for _, want := range []string{"Data budget", "50 GiB per month", "30 GiB (60.0 %)", "60 GiB (120.0 %)", "background: 3 ops, 3 MiB since"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not show %q", want)
		}
	}
	st.Budget = nil
	if page := renderEndpoint(t, st, now); strings.Contains(page, "Data budget") {
		t.Error("an endpoint without a budget has a budget part")
	}
}
