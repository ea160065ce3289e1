package agent

import (
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestFailoverMetrics: an agent whose endpoint lists two cores moves to
// the second when the first shuts down, and back when the first answers
// again; /metrics shows each move by its reason and the index of the
// address in use.
func TestFailoverMetrics(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c1 := coretest.Start(t, p, nil)
	first, second := c1.Addr.String(), coretest.Start(t, p, nil).Addr.String()
	cfg := coretest.AgentConfig(t, p, first)
	cfg.Endpoints[0].Addresses = []string{first, second}
	cfg.Endpoints[0].FailBack = 500 * time.Millisecond
	a := startAgent(t, p, cfg, Options{})
	h := a.MetricsHandler()
	ep := map[string]string{"endpoint": "core"}
	moves := func(reason string) map[string]string { return map[string]string{"endpoint": "core", "reason": reason} }
	inUse := func(addr string) bool {
		st, err := a.Status("core")
		return err == nil && st.Connected && st.Address == addr
	}

	testutil.WaitFor(t, 20*time.Second, "the agent to connect to the first core", func() bool { return inUse(first) })
	fams := scrape(t, h)
	mustValue(t, fams, "edge_sync_address_index", map[string]string{"endpoint": "core", "address": first}, 0)
	mustValue(t, fams, "edge_sync_address_moves_total", moves("shutdown"), 0)

	c1.Stop()
	testutil.WaitFor(t, 30*time.Second, "the agent to fail over to the second core", func() bool { return inUse(second) })
	fams = scrape(t, h)
	mustValue(t, fams, "edge_sync_address_index", map[string]string{"endpoint": "core", "address": second}, 1)
	mustValue(t, fams, "edge_sync_address_moves_total", moves("shutdown"), 1)
	mustValue(t, fams, "edge_sync_address_moves_total", moves("fail_back"), 0)
	if n := len(fams["edge_sync_address_index"].GetMetric()); n != 1 {
		t.Errorf("edge_sync_address_index%v has %d series, want 1 (the address in use)", ep, n)
	}

	coretest.StartAt(t, p, first, nil) // the first core is back on its address
	testutil.WaitFor(t, 30*time.Second, "the agent to move back to the first core", func() bool { return inUse(first) })
	fams = scrape(t, h)
	mustValue(t, fams, "edge_sync_address_index", map[string]string{"endpoint": "core", "address": first}, 0)
	mustValue(t, fams, "edge_sync_address_moves_total", moves("fail_back"), 1)
	mustValue(t, fams, "edge_sync_address_moves_total", moves("shutdown"), 1)
	mustValue(t, fams, "edge_sync_address_moves_total", moves("unreachable"), 0)
}
