package core

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestMetricsHandlerStore scrapes a core's /metrics over HTTP and checks
// the store's figures per agent. The agent package's TestMetricsScrape
// covers the server's counters with a real agent.
func TestMetricsHandlerStore(t *testing.T) {
	dir := t.TempDir()
	store, err := Open(filepath.Join(dir, "core.db"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	gen := edgesync.NewIDGenerator()
	state, event := []byte("v1"), []byte("event payload")
	if _, err := store.Apply("site-9", hdrFor(gen.Next(), edgesync.StateOp, "cfg", state), bytes.NewReader(state)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Apply("site-9", hdrFor(gen.Next(), edgesync.EventOp, "log", event), bytes.NewReader(event)); err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(ServerConfig{TLS: testutil.NewPKI(t, "site-9").ServerTLS(t), Store: store})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.MetricsHandler(store))
	defer hs.Close()
	res, err := http.Get(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	get := func(name, agent string) float64 {
		t.Helper()
		for _, m := range fams[name].GetMetric() {
			if agent == "" || (len(m.Label) == 1 && m.Label[0].GetValue() == agent) {
				if m.Gauge != nil {
					return m.Gauge.GetValue()
				}
				return m.Counter.GetValue()
			}
		}
		t.Fatalf("no %s{agent=%q} in /metrics", name, agent)
		return 0
	}
	if v := get("edge_sync_core_store_agents", ""); v != 1 {
		t.Errorf("store_agents = %v, want 1", v)
	}
	if v := get("edge_sync_core_store_keys", "site-9"); v != 1 {
		t.Errorf("store_keys = %v, want 1", v)
	}
	if v := get("edge_sync_core_store_events", "site-9"); v != 1 {
		t.Errorf("store_events = %v, want 1", v)
	}
	if v := get("edge_sync_core_store_applied_ops", "site-9"); v != 2 {
		t.Errorf("store_applied_ops = %v, want 2", v)
	}
	if v := get("edge_sync_core_ops_applied_total", ""); v != 0 {
		t.Errorf("ops_applied_total = %v before any connection, want 0", v)
	}
}
