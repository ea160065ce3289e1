package agent

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// coreAt runs a core on addr ("127.0.0.1:0" for a free port) and returns
// its address and a stop that closes it (shutting down, as a core
// process does on SIGTERM) and frees the port; the test's cleanup stops
// it too.
func coreAt(t *testing.T, p *testutil.PKI, addr string) (string, func()) {
	t.Helper()
	store, err := core.Open(filepath.Join(t.TempDir(), "core.db"), core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := core.NewServer(core.ServerConfig{Name: "core", TLS: p.ServerTLS(t), Store: store, Logger: testutil.Logger(t, "core")})
	if err != nil {
		t.Fatal(err)
	}
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), pc) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		if err := testutil.Within(t, "the core's Close", srv.Close); err != nil {
			t.Errorf("core Close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("core Serve: %v", err)
		}
		pc.Close()
		store.Close()
	}
	t.Cleanup(stop)
	return pc.LocalAddr().String(), stop
}

// TestFailoverMetrics: an agent whose endpoint lists two cores moves to
// the second when the first shuts down, and back when the first answers
// again; /metrics shows each move by its reason and the index of the
// address in use.
func TestFailoverMetrics(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	first, stopFirst := coreAt(t, p, "127.0.0.1:0")
	second, _ := coreAt(t, p, "127.0.0.1:0")
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

	stopFirst()
	testutil.WaitFor(t, 30*time.Second, "the agent to fail over to the second core", func() bool { return inUse(second) })
	fams = scrape(t, h)
	mustValue(t, fams, "edge_sync_address_index", map[string]string{"endpoint": "core", "address": second}, 1)
	mustValue(t, fams, "edge_sync_address_moves_total", moves("shutdown"), 1)
	mustValue(t, fams, "edge_sync_address_moves_total", moves("fail_back"), 0)
	if n := len(fams["edge_sync_address_index"].GetMetric()); n != 1 {
		t.Errorf("edge_sync_address_index%v has %d series, want 1 (the address in use)", ep, n)
	}

	coreAt(t, p, first) // the first core is back on its address
	testutil.WaitFor(t, 30*time.Second, "the agent to move back to the first core", func() bool { return inUse(first) })
	fams = scrape(t, h)
	mustValue(t, fams, "edge_sync_address_index", map[string]string{"endpoint": "core", "address": first}, 0)
	mustValue(t, fams, "edge_sync_address_moves_total", moves("fail_back"), 1)
	mustValue(t, fams, "edge_sync_address_moves_total", moves("shutdown"), 1)
	mustValue(t, fams, "edge_sync_address_moves_total", moves("unreachable"), 0)
}
