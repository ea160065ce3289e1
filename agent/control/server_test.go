package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/agenttest"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// ctlEnv is a running control server of an agent.
type ctlEnv struct {
	a    *agent.Agent
	srv  *Server
	c    *Client
	sock string
}

func startControl(t testing.TB, a *agent.Agent, cfg config.Control) *ctlEnv {
	t.Helper()
	sock := filepath.Join(testutil.ShortTempDir(t), "agent.sock")
	srv, err := NewServer(a, cfg, sock, testutil.Logger(t, "control"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	c := NewClient(sock)
	t.Cleanup(func() {
		c.Close()
		cancel()
		if err := testutil.Returned(t, done, 10*time.Second, "control Serve to return after its context ended"); err != nil {
			t.Errorf("control Serve: %v", err)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket %s left behind after Serve returned (stat: %v)", sock, err)
		}
	})
	return &ctlEnv{a: a, srv: srv, c: c, sock: sock}
}

// offlineAgent is an agent whose core is unreachable, with one endpoint
// "core".
func offlineAgent(t testing.TB, mod func(*config.Agent)) *agent.Agent {
	p := testutil.NewPKI(t, "site-1")
	cfg := coretest.AgentConfig(t, p, testutil.SilentUDPAddr(t))
	if mod != nil {
		mod(&cfg)
	}
	return agenttest.Start(t, p, cfg, agent.Options{})
}

func outboxCount(t testing.TB, a *agent.Agent) outbox.Stats {
	t.Helper()
	st, err := a.Outbox().Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func wantStatus(t testing.TB, err error, status int, code string) {
	t.Helper()
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("want HTTP %d %s, got %v", status, code, err)
	}
	if se.Status != status || se.Code != code {
		t.Fatalf("want HTTP %d %s, got HTTP %d %s: %s", status, code, se.Status, se.Code, se.Message)
	}
	if se.Message == "" {
		t.Fatalf("HTTP %d %s has no message", status, code)
	}
}

// TestControlSendReachesCore sends over the socket to a real core and
// reads the data back from the core's store.
func TestControlSendReachesCore(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	a := agenttest.Start(t, p, coretest.AgentConfig(t, p, c.Addr.String()), agent.Options{})
	env := startControl(t, a, config.Control{MaxBodyBytes: 1 << 20})
	ctx := context.Background()

	h, err := env.c.Health(ctx)
	if err != nil || h.Status != "ok" || h.Agent != "site-1" || len(h.Endpoints) != 1 {
		t.Fatalf("health = %+v, %v", h, err)
	}
	data := bytes.Repeat([]byte("pump-3 pressure 4.2 bar\n"), 1000)
	res, err := env.c.Upload(ctx, CmdSend, UploadParams{Key: "sensors/pump-3", Priority: "high", Kind: "state"}, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(len(data)) || res.Priority != edgesync.High || res.Kind != "state" || res.Endpoint != "core" {
		t.Fatalf("send answered %+v", res)
	}
	testutil.WaitFor(t, 30*time.Second, "the op to reach the core", func() bool {
		got, err := c.Data("site-1", "sensors/pump-3")
		return err == nil && bytes.Equal(got, data)
	})
	var st StatsResponse
	testutil.WaitFor(t, 10*time.Second, "transport.stats to count the ack", func() bool {
		if err := env.c.Call(ctx, CmdStats, nil, &st); err != nil {
			t.Fatal(err)
		}
		return st.Endpoints[0].Priorities["high"].Acked == 1
	})
	if st.Endpoints[0].Priorities["high"].Bytes != int64(len(data)) || st.Outbox.Ops != 0 {
		t.Fatalf("stats after delivery: %+v", st)
	}
}

// TestControlCommands runs the happy path of every command over the socket
// against an agent whose core is unreachable, so ops stay queued.
func TestControlCommands(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	a := offlineAgent(t, nil)
	env := startControl(t, a, config.Control{MaxBodyBytes: 1 << 20})
	ctx := context.Background()
	cl := env.c

	// send and sync.queue
	stateData := []byte(`{"pressure": 4.2}`)
	s1, err := cl.Upload(ctx, CmdSend, UploadParams{Key: "pump", Kind: "state", TTL: "1h", Summary: []byte("p=4.2")}, bytes.NewReader(stateData), -1)
	if err != nil {
		t.Fatal(err)
	}
	if s1.Priority != edgesync.Normal || s1.ExpiresAt == nil {
		t.Fatalf("send defaults: %+v", s1)
	}
	alarm := []byte("ALARM pump-3 overpressure")
	s2, err := cl.Upload(ctx, CmdQueue, UploadParams{Endpoint: "core", Priority: "critical"}, bytes.NewReader(alarm), int64(len(alarm)))
	if err != nil {
		t.Fatal(err)
	}
	op, err := a.Outbox().Get(s1.ID)
	if err != nil || string(op.Summary) != "p=4.2" || op.Kind != edgesync.StateOp || op.Key != "pump" {
		t.Fatalf("stored op %+v, %v", op, err)
	}
	if got := outboxCount(t, a); got.Total.Ops != 2 {
		t.Fatalf("outbox holds %d ops, want 2", got.Total.Ops)
	}

	// quality, status, stats
	var m linkmon.Measurement
	if err := cl.Call(ctx, CmdQuality, EndpointRequest{Endpoint: "core"}, &m); err != nil {
		t.Fatal(err)
	}
	var ls agent.LinkStatus
	if err := cl.Call(ctx, CmdStatus, nil, &ls); err != nil {
		t.Fatal(err)
	}
	if ls.Endpoint != "core" || ls.Backlog["critical"].Ops != 1 || ls.Backlog["normal"].Ops != 1 ||
		ls.Backlog["normal"].Bytes != int64(len(stateData)) || ls.Pin != "auto" {
		t.Fatalf("status: %+v", ls)
	}
	var st StatsResponse
	if err := cl.Call(ctx, CmdStats, struct{}{}, &st); err != nil {
		t.Fatal(err)
	}
	if st.Outbox.Ops != 2 || st.Outbox.ByPriority["critical"].Ops != 1 || len(st.Endpoints) != 1 {
		t.Fatalf("stats: %+v", st)
	}

	// switch and back
	if err := cl.Call(ctx, CmdSwitch, SwitchRequest{To: "satellite"}, &ls); err != nil {
		t.Fatal(err)
	}
	if ls.Class != edgesync.Satellite || ls.Pin != "class=satellite" {
		t.Fatalf("after switch to satellite: class %v pin %q", ls.Class, ls.Pin)
	}
	if err := cl.Call(ctx, CmdSwitch, SwitchRequest{Endpoint: "core", To: "store-and-forward"}, &ls); err != nil {
		t.Fatal(err)
	}
	if ls.Params.Mode != edgesync.SyncStoreAndForward {
		t.Fatalf("after pinning store-and-forward: mode %v", ls.Params.Mode)
	}
	if err := cl.Call(ctx, CmdSwitch, SwitchRequest{To: "auto"}, &ls); err != nil || ls.Pin != "auto" {
		t.Fatalf("switch auto: pin %q, %v", ls.Pin, err)
	}

	// config: show, then change a class's chunk size
	var rc agent.RuntimeConfig
	if err := cl.Call(ctx, CmdConfig, nil, &rc); err != nil || rc.Name != "site-1" || len(rc.Endpoints) != 1 {
		t.Fatalf("config: %+v, %v", rc, err)
	}
	if err := cl.Call(ctx, CmdConfig, ConfigRequest{Class: "satellite", Profile: &linkmon.Override{ChunkSize: 12345}}, &rc); err != nil {
		t.Fatal(err)
	}
	if rc.Overrides[edgesync.Satellite].ChunkSize != 12345 || a.Config().Overrides[edgesync.Satellite].ChunkSize != 12345 {
		t.Fatalf("config change not applied: %+v", rc.Overrides[edgesync.Satellite])
	}

	// measure needs a connection: this agent's core is unreachable
	wantStatus(t, cl.Call(ctx, CmdMeasure, EndpointRequest{}, nil), http.StatusServiceUnavailable, "not_connected")
	var hist any
	if err := cl.Call(ctx, CmdHistory, HistoryRequest{Window: "5m"}, &hist); err != nil {
		t.Fatalf("history: %v", err)
	}
	// monitor.stop stops the monitor; measure and history then say so;
	// monitor.start brings it back with overrides, and refuses bad ones.
	var mr agent.MonitorResult
	if err := cl.Call(ctx, CmdMonitorStop, EndpointRequest{Endpoint: "core"}, &mr); err != nil || mr.Endpoint != "core" {
		t.Fatalf("monitor.stop: %+v, %v", mr, err)
	}
	wantStatus(t, cl.Call(ctx, CmdMeasure, EndpointRequest{}, nil), http.StatusConflict, "no_monitor")
	wantStatus(t, cl.Call(ctx, CmdHistory, HistoryRequest{Window: "5m"}, nil), http.StatusConflict, "no_monitor")
	wantStatus(t, cl.Call(ctx, CmdMonitorStop, EndpointRequest{Endpoint: "core"}, nil), http.StatusConflict, "no_monitor")
	wantStatus(t, cl.Call(ctx, CmdMonitorStart, MonitorStartRequest{Endpoint: "core", Monitor: &MonitorOverrides{SampleInterval: "10m"}}, nil), http.StatusBadRequest, "bad_request")
	wantStatus(t, cl.Call(ctx, CmdMeasure, EndpointRequest{}, nil), http.StatusConflict, "no_monitor")
	if err := cl.Call(ctx, CmdMonitorStart, MonitorStartRequest{Endpoint: "core", Monitor: &MonitorOverrides{SampleInterval: "1s"}}, &mr); err != nil || !mr.Monitoring {
		t.Fatalf("monitor.start: %+v, %v", mr, err)
	}
	wantStatus(t, cl.Call(ctx, CmdMeasure, EndpointRequest{}, nil), http.StatusServiceUnavailable, "not_connected")

	// sync.next: lease the critical op, ack it; lease the state op, release it
	lop, body, err := cl.Lease(ctx, NextRequest{Priorities: []string{"critical"}, TTL: "1m"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(body)
	body.Close()
	if err != nil || !bytes.Equal(got, alarm) || lop.ID != s2.ID || lop.Priority != edgesync.Critical {
		t.Fatalf("leased %+v with payload %q, %v", lop, got, err)
	}
	if _, _, err := cl.Lease(ctx, NextRequest{Priorities: []string{"critical"}}); !errors.Is(err, ErrNothingWaiting) {
		t.Fatalf("second critical lease: want ErrNothingWaiting, got %v", err)
	}
	var nr NextResponse
	if err := cl.Call(ctx, CmdNext, NextRequest{Action: "ack", ID: lop.ID.String()}, &nr); err != nil || nr.Action != "ack" {
		t.Fatalf("ack: %+v, %v", nr, err)
	}
	if _, err := a.Outbox().Get(s2.ID); !errors.Is(err, outbox.ErrNotFound) {
		t.Fatalf("acked op still in the outbox: %v", err)
	}
	lop2, body, err := cl.Lease(ctx, NextRequest{Endpoint: "core"})
	if err != nil {
		t.Fatal(err)
	}
	body.Close()
	if lop2.ID != s1.ID || string(lop2.Summary) != "p=4.2" || lop2.Key != "pump" || lop2.Kind != "state" {
		t.Fatalf("second lease: %+v", lop2)
	}
	if outboxCount(t, a).Leased != 1 {
		t.Fatal("the leased op is not marked leased in the outbox")
	}
	if err := cl.Call(ctx, CmdNext, NextRequest{Action: "release", ID: lop2.ID.String()}, &nr); err != nil {
		t.Fatal(err)
	}
	if st := outboxCount(t, a); st.Leased != 0 || st.Total.Ops != 1 {
		t.Fatalf("after release: %d ops, %d leased; want 1, 0", st.Total.Ops, st.Leased)
	}

	// monitor.start with an address adds an endpoint at run time
	if err := cl.Call(ctx, CmdMonitorStart, MonitorStartRequest{Endpoint: "core-2", Address: testutil.SilentUDPAddr(t), ServerName: "127.0.0.1",
		Monitor: &MonitorOverrides{ProbeInterval: "10s"}}, &mr); err != nil {
		t.Fatal(err)
	}
	if !mr.Added || !mr.Monitoring || mr.Endpoint != "core-2" {
		t.Fatalf("monitor.start: %+v", mr)
	}
	if eps := a.Endpoints(); len(eps) != 2 || eps[1] != "core-2" {
		t.Fatalf("endpoints after monitor.start: %v", eps)
	}
	if _, err := cl.Upload(ctx, CmdSend, UploadParams{Endpoint: "core-2", Key: "x"}, strings.NewReader("x"), 1); err != nil {
		t.Fatalf("send to the added endpoint: %v", err)
	}
}

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

// TestTimelineCommand: transport.bandwidth.timeline answers what the
// status page plots (the agent's Timeline): one point a second with the
// class, the mode and the queue per priority, in the documented order. It
// answers while the link monitor is stopped too, unlike history.
func TestTimelineCommand(t *testing.T) {
	a := offlineAgent(t, nil)
	env := startControl(t, a, config.Control{})
	ctx := context.Background()
	sat := edgesync.Satellite
	if err := a.Switch("core", linkmon.Pin{Class: &sat}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Enqueue(ctx, outbox.NewOp{Endpoint: "core", Key: "logs", Priority: edgesync.Analytics, Payload: bytes.NewReader([]byte("line"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.StopMonitor("core"); err != nil {
		t.Fatal(err)
	}
	var tl agent.Timeline
	testutil.WaitFor(t, 10*time.Second, "a point with the pinned class and the queued op", func() bool {
		if err := env.c.Call(ctx, CmdTimeline, TimelineRequest{Window: "1m"}, &tl); err != nil {
			t.Fatalf("timeline: %v", err)
		}
		n := len(tl.Points)
		return n > 0 && tl.Points[n-1].Class == sat && tl.Points[n-1].QueueOps[edgesync.Analytics] == 1
	})
	last := tl.Points[len(tl.Points)-1]
	if tl.Endpoint != "core" || tl.Interval != agent.TimelineInterval || len(tl.Priorities) != edgesync.NumPriorities ||
		tl.Priorities[edgesync.Analytics] != edgesync.Analytics || last.Mode != edgesync.SyncDeltaZstd || last.Connected ||
		last.QueueBytes[edgesync.Analytics] != 4 || time.Since(last.At) > 10*time.Second {
		t.Fatalf("timeline: %+v, last point %+v", tl, last)
	}
	wantStatus(t, env.c.Call(ctx, CmdTimeline, TimelineRequest{Window: "soon"}, nil), http.StatusBadRequest, "bad_request")
	wantStatus(t, env.c.Call(ctx, CmdTimeline, TimelineRequest{Endpoint: "mars"}, nil), http.StatusNotFound, "unknown_endpoint")
}

// TestStatsAckedOpNotQueued: an op the core acknowledges between
// transport.stats's two reads (the outbox and the endpoints' counters) is
// not in the answer both as acked and as still in the outbox.
// TestControlSendReachesCore saw that once under -race: the outbox read
// while the op was leased, the counters after its ack. Here the core
// starts, on the socket the agent's endpoint points at, only between the
// reads, and the op is acked before the second.
func TestStatsAckedOpNotQueued(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	sock := testutil.UDPSocket(t) // no core serves it until the first read
	a := agenttest.Start(t, p, coretest.AgentConfig(t, p, sock.LocalAddr().String()), agent.Options{})
	if _, err := a.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: "sensors/pump-3", Kind: edgesync.StateOp,
		Priority: edgesync.High, Payload: bytes.NewReader([]byte("pump-3 pressure 4.2 bar"))}); err != nil {
		t.Fatal(err)
	}
	acked := func() int64 { return a.Stats()[0].Priorities["high"].Acked }
	st, err := statsOf(a, func() {
		if n := acked(); n != 0 {
			t.Fatalf("%d ops acked before any core listened", n)
		}
		coretest.StartConn(t, p, sock, nil)
		testutil.WaitFor(t, 30*time.Second, "the op acked by the core started between the reads", func() bool { return acked() == 1 })
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Endpoints[0].Priorities["high"].Acked; n > 0 && st.Outbox.Ops > 0 {
		t.Fatalf("stats count %d op acked and %d in the outbox (%d leased): the one op counted twice", n, st.Outbox.Ops, st.Outbox.Leased)
	}
	st, err = statsOf(a, nil)
	if err != nil || st.Endpoints[0].Priorities["high"].Acked != 1 || st.Outbox.Ops != 0 {
		t.Fatalf("stats after the ack: %+v, %v", st, err)
	}
}
