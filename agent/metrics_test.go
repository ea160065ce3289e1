package agent

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// scrape GETs /metrics over HTTP and parses the text format.
func scrape(t testing.TB, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: HTTP %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of the metric of family name whose labels
// include want; ok is false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

func mustValue(t testing.TB, fams map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	v, ok := value(fams, name, labels)
	if !ok {
		t.Fatalf("no %s%v in /metrics", name, labels)
	}
	if v != want {
		t.Fatalf("%s%v = %v, want %v", name, labels, v, want)
	}
}

// TestMetricsScrape sends ops through a real core and scrapes /metrics of
// both agent and core over HTTP.
func TestMetricsScrape(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	p, c, cfg := siteCore(t)
	a := startAgent(t, p, cfg, Options{})

	data := bytes.Repeat([]byte("reading 42\n"), 3000)
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "a", Kind: edgesync.StateOp, Priority: edgesync.High, Payload: bytes.NewReader(data)})
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "b", Kind: edgesync.StateOp, Priority: edgesync.High, Payload: bytes.NewReader(data[:100])})
	testutil.WaitFor(t, 30*time.Second, "the outbox to drain", func() bool { return outboxEmpty(a) })
	if err := a.Switch("core", pinClass(edgesync.Satellite)); err != nil {
		t.Fatal(err)
	}

	fams := scrape(t, a.MetricsHandler())
	ep := map[string]string{"endpoint": "core"}
	mustValue(t, fams, "edge_sync_acks_total", map[string]string{"endpoint": "core", "priority": "high"}, 2)
	mustValue(t, fams, "edge_sync_goodput_bytes_total", map[string]string{"endpoint": "core", "priority": "high"}, float64(len(data)+100))
	mustValue(t, fams, "edge_sync_acks_total", map[string]string{"endpoint": "core", "priority": "critical"}, 0)
	mustValue(t, fams, "edge_sync_link_class", map[string]string{"endpoint": "core", "class": "satellite"}, 1)
	mustValue(t, fams, "edge_sync_link_class", map[string]string{"endpoint": "core", "class": "unknown"}, 0)
	mustValue(t, fams, "edge_sync_link_connected", ep, 1)
	st, err := a.Status("core")
	if err != nil || st.ProbeBytes <= 0 {
		t.Fatalf("the link monitor sent no probes: %d, %v", st.ProbeBytes, err)
	}
	if v := fams["edge_sync_probe_bytes_total"].GetMetric(); len(v) != 1 || v[0].GetCounter().GetValue() <= 0 {
		t.Fatalf("edge_sync_probe_bytes_total = %v, want > 0", v)
	}
	mustValue(t, fams, "edge_sync_queue_ops", map[string]string{"priority": "high"}, 0)
	mustValue(t, fams, "edge_sync_drops_total", map[string]string{"reason": "capacity"}, 0)
	mustValue(t, fams, "edge_sync_connects_total", ep, 1)
	if n := len(fams["edge_sync_sync_mode"].GetMetric()); n != len(edgesync.SyncModes()) {
		t.Fatalf("edge_sync_sync_mode has %d series, want one per mode (%d)", n, len(edgesync.SyncModes()))
	}
	var ones float64
	for _, m := range fams["edge_sync_sync_mode"].GetMetric() {
		ones += m.Gauge.GetValue()
	}
	if ones != 1 {
		t.Fatalf("edge_sync_sync_mode: %v modes set, want exactly 1", ones)
	}
	var wire, plain float64
	for _, m := range fams["edge_sync_wire_bytes_total"].GetMetric() {
		wire += m.Counter.GetValue()
	}
	for _, m := range fams["edge_sync_wire_plain_bytes_total"].GetMetric() {
		plain += m.Counter.GetValue()
	}
	if plain != float64(len(data)+100) || wire <= 0 || wire >= plain {
		t.Fatalf("wire bytes %v for %v plain bytes of compressible data: want 0 < wire < plain", wire, plain)
	}
	for name, f := range fams {
		if len(name) < 10 || name[:10] != "edge_sync_" || f.GetHelp() == "" {
			t.Fatalf("metric %s: want the edge_sync_ prefix and a help text", name)
		}
	}

	// Queue depth of a new op: it may leave at once, so the gauge reads 1
	// or, already drained, 0.
	if err := a.Switch("core", linkmon.Pin{}); err != nil {
		t.Fatal(err)
	}
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "c", Priority: edgesync.Background, Payload: bytes.NewReader(data)})
	fams = scrape(t, a.MetricsHandler())
	v, ok := value(fams, "edge_sync_queue_ops", map[string]string{"priority": "background"})
	if !ok || (v != 1 && v != 0) {
		t.Fatalf("edge_sync_queue_ops{priority=background} = %v (present %v), want 0 or 1", v, ok)
	}
	testutil.WaitFor(t, 30*time.Second, "the outbox to drain", func() bool { return outboxEmpty(a) })

	// The core's metrics.
	cf := scrape(t, c.Server.MetricsHandler(c.Store))
	mustValue(t, cf, "edge_sync_core_ops_applied_total", nil, 3)
	mustValue(t, cf, "edge_sync_core_connections", nil, 1)
	mustValue(t, cf, "edge_sync_core_store_agents", nil, 1)
	mustValue(t, cf, "edge_sync_core_store_keys", map[string]string{"agent": "site-1"}, 2)
	mustValue(t, cf, "edge_sync_core_store_events", map[string]string{"agent": "site-1"}, 1)
	if v, ok := value(cf, "edge_sync_core_bytes_applied_total", nil); !ok || v != float64(2*len(data)+100) {
		t.Fatalf("edge_sync_core_bytes_applied_total = %v, want %d", v, 2*len(data)+100)
	}
	// Per agent: what arrived from site-1, and when it was last heard of.
	site := map[string]string{"agent": "site-1"}
	mustValue(t, cf, "edge_sync_core_agent_connected", site, 1)
	mustValue(t, cf, "edge_sync_core_agent_ops_received_total", site, 3)
	mustValue(t, cf, "edge_sync_core_agent_bytes_received_total", site, float64(2*len(data)+100))
	for _, name := range []string{"edge_sync_core_agent_last_seen_timestamp_seconds", "edge_sync_core_agent_last_op_timestamp_seconds"} {
		if v, ok := value(cf, name, site); !ok || time.Since(time.Unix(int64(v), 0)) > time.Minute {
			t.Fatalf("%s = %v (present %v), want within the last minute", name, v, ok)
		}
	}
	mustValue(t, fams, "edge_sync_summary_held_bytes_total", ep, 0)
}

func pinClass(c edgesync.LinkClass) linkmon.Pin { return linkmon.Pin{Class: &c} }

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
