package agent

import (
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestIdleMetrics: an agent whose link carries nothing for idle_after
// shows edge_sync_link_idle 1 in /metrics, with its wake counters; an op
// enqueued brings the busy schedule back, and the gauge to 0.
func TestIdleMetrics(t *testing.T) {
	p, _, cfg := siteCore(t)
	cfg.Endpoints[0].Monitor.IdleAfter = time.Second
	a := startAgent(t, p, cfg, Options{})
	h := a.MetricsHandler()
	ep := map[string]string{"endpoint": "core"}
	idle := func() float64 {
		v, ok := value(scrape(t, h), "edge_sync_link_idle", ep)
		if !ok {
			t.Fatal("no edge_sync_link_idle{endpoint=core} in /metrics")
		}
		return v
	}
	testutil.WaitFor(t, 20*time.Second, "/metrics to show the link idle", func() bool { return idle() == 1 })
	fams := scrape(t, h)
	for _, name := range []string{"edge_sync_link_idle_wakes_total", "edge_sync_link_idle_dismissed_total"} {
		if _, ok := value(fams, name, ep); !ok {
			t.Errorf("no %s{endpoint=core} in /metrics", name)
		}
	}
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "alarms/1", Kind: edgesync.EventOp, Priority: edgesync.Critical, Payload: strings.NewReader("pressure high")})
	testutil.WaitFor(t, 10*time.Second, "/metrics to show the link busy after an op", func() bool { return idle() == 0 })
}
