package agent

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// statusJSON is transport.bandwidth.status as the control API sends it.
func statusJSON(t testing.TB, a *Agent) map[string]any {
	t.Helper()
	st := mustStatus(t, a)
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// Status said "connected" with 0 % loss for over 20 s after the link was
// cut, while the class went intermittent. The link is cut with linksim;
// status must say unreachable (with when the core last answered) within the
// outage rule's bound, in the status JSON and in /metrics, and connected
// again once the link is back.
func TestStatusUnreachableDuringOutage(t *testing.T) {
	_, a, link := shapedAgent(t, linksim.Broadband())
	testutil.WaitFor(t, 30*time.Second, "connected, with the link measured", func() bool {
		st := statusJSON(t, a)
		return link() != nil && st["connected"] == true && st["measured_class"] != "unknown"
	})

	if err := link().SetProfile(linksim.Outage()); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	// The outage rule: more than max_missed (2) stale samples over
	// min_outage (1.5 s); BenchmarkDetection's p95 is 2.5 s.
	testutil.WaitFor(t, 8*time.Second, "status to say unreachable (it says connected for as long as QUIC keeps the connection)", func() bool {
		return statusJSON(t, a)["state"] == "unreachable"
	})
	t.Logf("unreachable %v after the cut", time.Since(cut).Round(10*time.Millisecond))
	st := statusJSON(t, a)
	down, err := time.Parse(time.RFC3339Nano, st["down_since"].(string))
	if err != nil || down.After(time.Now()) || cut.Sub(down) > 2*time.Second {
		t.Fatalf("down_since %v (%v), want the last answer, at most 2 s before the cut at %v", st["down_since"], err, cut)
	}
	if fig := st["figures"].(map[string]any); st["class"] != "intermittent" || fig["loss"] != 1.0 {
		t.Fatalf("status while unreachable: class %v, loss %v; want intermittent, 1", st["class"], fig["loss"])
	}
	fams := scrape(t, a.MetricsHandler())
	if v, ok := value(fams, "edge_sync_link_reachable", map[string]string{"endpoint": "core"}); !ok || v != 0 {
		t.Fatalf("edge_sync_link_reachable = %v (present %t) while the link is down, want 0", v, ok)
	}
	if v, ok := value(fams, "edge_sync_link_down_seconds", map[string]string{"endpoint": "core"}); !ok || v < 1 {
		t.Fatalf("edge_sync_link_down_seconds = %v (present %t) while the link is down, want ≥ 1", v, ok)
	}

	if err := link().SetProfile(linksim.Broadband()); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	testutil.WaitFor(t, 15*time.Second, "status to say connected again", func() bool {
		st := statusJSON(t, a)
		return st["state"] == "connected" && st["down_since"] == nil
	})
	t.Logf("connected %v after the link came back", time.Since(back).Round(10*time.Millisecond))
	if v, ok := value(scrape(t, a.MetricsHandler()), "edge_sync_link_reachable", map[string]string{"endpoint": "core", "state": "connected"}); !ok || v != 1 {
		t.Fatalf("edge_sync_link_reachable = %v (present %t) after the link came back, want 1", v, ok)
	}
}
