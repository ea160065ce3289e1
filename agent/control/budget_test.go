package control

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/budget"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestBudgetCommands: transport.budget.status shows the configured
// budget (also inside transport.bandwidth.status), .set changes the
// allowance, .reset zeroes the spend, and an endpoint without a budget
// gets a 409 no_budget that says what to add.
func TestBudgetCommands(t *testing.T) {
	a := offlineAgent(t, func(c *config.Agent) {
		b := budget.Default(10<<20, budget.Period{Kind: budget.Days, Length: 24 * time.Hour})
		c.Endpoints[0].Budget = &b
		c.Endpoints = append(c.Endpoints, config.Endpoint{Name: "free", Address: c.Endpoints[0].Address, ServerName: "127.0.0.1", Monitor: c.Monitor})
	})
	env := startControl(t, a, config.Control{})
	ctx := context.Background()

	var raw json.RawMessage
	if err := env.c.Call(ctx, CmdBudgetStatus, EndpointRequest{Endpoint: "core"}, &raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("null")) {
		t.Errorf("budget status answered null:\n%s", raw)
	}
	var st agent.BudgetStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	testutil.CheckNoNullLists(t, st)
	if st.Allowance != 10<<20 || st.Period.String() != "day" || st.Zone != "UTC" || len(st.Priorities) != 6 || !st.PeriodEnd.After(st.PeriodStart) {
		t.Errorf("budget status: %s", raw)
	}

	var ls agent.LinkStatus
	if err := env.c.Call(ctx, CmdStatus, EndpointRequest{Endpoint: "core"}, &ls); err != nil {
		t.Fatal(err)
	}
	if ls.Budget == nil || ls.Budget.Allowance != 10<<20 {
		t.Errorf("transport.bandwidth.status has no budget figures: %+v", ls.Budget)
	}

	if err := env.c.Call(ctx, CmdBudgetSet, BudgetSetRequest{Endpoint: "core", Allowance: "20MiB"}, &st); err != nil {
		t.Fatal(err)
	}
	if st.Allowance != 20<<20 || st.Reserve != 1<<20 {
		t.Errorf("after set 20MiB: allowance %d, reserve %d (want 20 MiB and its 5 %%)", st.Allowance, st.Reserve)
	}
	err := env.c.Call(ctx, CmdBudgetSet, BudgetSetRequest{Endpoint: "core", Allowance: "lots"}, &st)
	wantStatus(t, err, http.StatusBadRequest, "bad_request")

	if err := env.c.Call(ctx, CmdBudgetReset, EndpointRequest{Endpoint: "core"}, &st); err != nil {
		t.Fatal(err)
	}
	if st.Spent != 0 {
		t.Errorf("after reset the budget has spent %d", st.Spent)
	}

	err = env.c.Call(ctx, CmdBudgetStatus, EndpointRequest{Endpoint: "free"}, &st)
	wantStatus(t, err, http.StatusConflict, "no_budget")
	if msg := err.Error(); !strings.Contains(msg, `endpoint "free" has no budget`) || !strings.Contains(msg, "allowance") {
		t.Errorf("no budget: %q does not say which endpoint has none and what to add", msg)
	}
	err = env.c.Call(ctx, CmdBudgetReset, EndpointRequest{Endpoint: "mars"}, &st)
	wantStatus(t, err, http.StatusNotFound, "unknown_endpoint")
	testutil.CheckJSONNames(t, agent.BudgetStatus{})
	testutil.CheckJSONNames(t, BudgetSetRequest{})
}
