package control

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// Every request and answer of the API has snake_case keys
// (docs/control-api.md); transport.config's answer was partly CamelCase.
func TestJSONKeysAreSnakeCase(t *testing.T) {
	for _, v := range []any{
		agent.LinkStatus{}, agent.RuntimeConfig{}, agent.MonitorResult{}, agent.Transfer{}, linkmon.Measurement{},
		HistoryResponse{}, StatsResponse{}, VerifyResponse{}, PurgeResponse{}, Health{}, LeasedOp{}, SendResponse{},
		NextResponse{}, Error{}, outbox.SalvageReport{},
		EndpointRequest{}, SwitchRequest{}, ConfigRequest{}, HistoryRequest{}, NextRequest{}, PurgeRequest{}, MonitorStartRequest{},
	} {
		testutil.CheckJSONNames(t, v)
	}
}

// The answers of a real agent with nothing in it write empty lists as [],
// never null.
func TestEmptyListsAreEmptyArrays(t *testing.T) {
	a := offlineAgent(t, nil)
	env := startControl(t, a, config.Control{})
	ctx := context.Background()
	answers := map[string]any{}
	var st agent.LinkStatus
	var rc agent.RuntimeConfig
	var stats StatsResponse
	var vr VerifyResponse
	for cmd, pair := range map[string]struct{ req, resp any }{
		CmdStatus: {nil, &st}, CmdConfig: {nil, &rc}, CmdStats: {nil, &stats}, CmdVerify: {nil, &vr},
	} {
		var raw json.RawMessage
		if err := env.c.Call(ctx, cmd, pair.req, &raw); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if bytes.Contains(raw, []byte("null")) {
			t.Errorf("%s answered null:\n%s", cmd, raw)
		}
		if err := json.Unmarshal(raw, pair.resp); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		answers[cmd] = pair.resp
	}
	h, err := env.c.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	answers["health"] = h
	for _, v := range answers {
		testutil.CheckNoNullLists(t, v)
	}
}
