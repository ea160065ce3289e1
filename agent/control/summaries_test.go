package control

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/linkmon"
)

// TestConfigSummaryPriorities: transport.config says per priority whether
// summaries go first (summary_priorities), shows it, and refuses critical
// with a message that says what to list instead.
func TestConfigSummaryPriorities(t *testing.T) {
	a := offlineAgent(t, nil)
	env := startControl(t, a, config.Control{})
	ctx := context.Background()
	var rc agent.RuntimeConfig
	req := json.RawMessage(`{"class": "satellite", "profile": {"summary_priorities": ["background"]}}`)
	if err := env.c.Call(ctx, CmdConfig, req, &rc); err != nil {
		t.Fatal(err)
	}
	p := rc.Profiles[edgesync.Satellite].Params
	if !p.SummaryFirst(edgesync.Background) || p.SummaryFirst(edgesync.Normal) || p.SummaryFirst(edgesync.Analytics) {
		t.Fatalf("satellite after the change: summary_only %t, summary_priorities %v", p.SummaryOnly, p.Summaries)
	}
	if got := a.Config().Profiles[edgesync.Satellite].Params.Summaries; got != linkmon.SummarySet(1<<edgesync.Background) {
		t.Fatalf("the agent holds summary priorities %v", got)
	}
	err := env.c.Call(ctx, CmdConfig, json.RawMessage(`{"class": "satellite", "profile": {"summary_priorities": ["critical"]}}`), &rc)
	wantStatus(t, err, http.StatusBadRequest, "bad_request")
	if msg := err.Error(); !strings.Contains(msg, "critical and schema ops always go in full at once") {
		t.Fatalf("refusal says %q", msg)
	}
	if got := a.Config().Profiles[edgesync.Satellite].Params.Summaries; got != linkmon.SummarySet(1<<edgesync.Background) {
		t.Fatalf("a refused change changed the summary priorities to %v", got)
	}
}
