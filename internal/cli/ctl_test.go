package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/agenttest"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// ctlHarness is a real core and a real agent with its control socket.
type ctlHarness struct {
	a     *agent.Agent
	store *core.Store
	sock  string
	dir   string
}

// startCtlHarness starts an agent whose endpoint "core" reaches a real
// core on loopback when online, or an address nothing listens on.
func startCtlHarness(t *testing.T, online bool) *ctlHarness {
	t.Helper()
	return startCtlHarnessWith(t, harnessOptions{online: online})
}

// harnessOptions vary the ctl harness.
type harnessOptions struct {
	online     bool
	serverName string           // the endpoint's server_name; default 127.0.0.1
	link       *linksim.Profile // shapes the agent's UDP socket
}

func startCtlHarnessWith(t *testing.T, o harnessOptions) *ctlHarness {
	t.Helper()
	online := o.online
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	certs := testutil.NewPKI(t, "site-1")
	h := &ctlHarness{dir: t.TempDir()}
	var addr string
	if online {
		c := coretest.Start(t, certs, nil)
		h.store, addr = c.Store, c.Addr.String()
	} else {
		addr = testutil.SilentUDPAddr(t)
	}
	cfg := coretest.AgentConfig(t, certs, addr)
	cfg.DataDir = filepath.Join(h.dir, "agent")
	if o.serverName != "" {
		cfg.Endpoints[0].ServerName = o.serverName
	}
	opts := agent.Options{TLS: certs.ClientTLS(t, "127.0.0.1")}
	if o.link != nil {
		p := *o.link
		opts.ListenPacket = func() (net.PacketConn, error) {
			pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return nil, err
			}
			return linksim.Wrap(pc, p)
		}
	}
	a := agenttest.Start(t, certs, cfg, opts)
	h.sock = filepath.Join(testutil.ShortTempDir(t), "agent.sock")
	cs, err := control.NewServer(a, config.Control{MaxBodyBytes: 8 << 20}, h.sock, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cs.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := testutil.Returned(t, done, 10*time.Second, "the control server to stop"); err != nil {
			t.Errorf("control Serve: %v", err)
		}
	})
	h.a = a
	return h
}

// ctl runs `edge-sync ctl --socket SOCK args...` with stdin.
func (h *ctlHarness) ctl(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var o, e bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	full := append([]string{"ctl", "--socket", h.sock}, args...)
	if len(args) > 0 && args[0] == "put" {
		full = append([]string{"put", "--socket", h.sock}, args[1:]...)
	}
	err := Run(ctx, full, Env{Stdin: strings.NewReader(stdin), Stdout: &o, Stderr: &e})
	return o.String(), e.String(), err
}

func (h *ctlHarness) ops(t *testing.T) int {
	st, err := h.a.Outbox().Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st.Total.Ops
}

// TestPutDeliversToCore puts a file and standard input through a real
// agent to a real core.
func TestPutDeliversToCore(t *testing.T) {
	h := startCtlHarness(t, true)
	file := filepath.Join(h.dir, "reading.json")
	data := bytes.Repeat([]byte(`{"pressure":4.2}`), 500)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := h.ctl(t, "", "put", "--key", "sensors/pump-3", "--priority", "high", "--state", "--summary", "p=4.2", file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := edgesync.ParseOpID(strings.TrimSpace(out)); err != nil {
		t.Fatalf("put printed %q, want an op ID: %v", out, err)
	}
	out, _, err = h.ctl(t, "line from stdin\n", "put", "--json", "--key", "logs/x", "--priority", "background", "-")
	if err != nil {
		t.Fatal(err)
	}
	var res control.SendResponse
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Size != 16 || res.Priority != edgesync.Background {
		t.Fatalf("put --json printed %q (%v)", out, err)
	}
	var lastErr error
	if !testutil.Poll(30*time.Second, func() bool {
		_, obj, err := h.store.Current("site-1", "sensors/pump-3")
		if lastErr = err; err != nil {
			return false
		}
		got, _ := io.ReadAll(io.NewSectionReader(obj, 0, obj.Size()))
		if !bytes.Equal(got, data) {
			t.Fatalf("core holds %d bytes, put %d", len(got), len(data))
		}
		return true
	}) {
		t.Fatalf("the put data did not reach the core within 30 s: %v", lastErr)
	}
}

// TestCtlCommands runs each ctl command's happy path against an agent
// whose core is unreachable, so that ops stay queued.
func TestCtlCommands(t *testing.T) {
	h := startCtlHarness(t, false)
	alarm := filepath.Join(h.dir, "alarm.txt")
	if err := os.WriteFile(alarm, []byte("ALARM overpressure"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.ctl(t, "", "transport.bandwidth.sync.queue", "--priority", "critical", "--key", "alarms/p3", alarm); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.ctl(t, "v=1", "transport.send", "--key", "cfg", "--state", "-"); err != nil {
		t.Fatal(err)
	}
	if n := h.ops(t); n != 2 {
		t.Fatalf("outbox holds %d ops, want 2", n)
	}

	out, _, err := h.ctl(t, "", "transport.bandwidth.status")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"class", "since", "why", "pin", "auto", "params", "drain ETA", "PRIORITY"} {
		if !strings.Contains(out, want) {
			t.Fatalf("status output lacks %q:\n%s", want, out)
		}
	}
	if field(t, out, "critical") != "1" || field(t, out, "normal") != "1" || field(t, out, "high") != "0" || field(t, out, "backlog") != "2" {
		t.Fatalf("status backlog is not 1 critical and 1 normal op:\n%s", out)
	}
	out, _, err = h.ctl(t, "", "transport.switch", "--endpoint", "core", "satellite")
	if err != nil || !strings.Contains(out, "class=satellite") || !strings.Contains(out, "satellite") {
		t.Fatalf("switch: %v\n%s", err, out)
	}
	out, _, err = h.ctl(t, "", "transport.switch", "--to", "auto", "--json")
	var ls agent.LinkStatus
	if err != nil || json.Unmarshal([]byte(out), &ls) != nil || ls.Pin != "auto" {
		t.Fatalf("switch --json: %v\n%s", err, out)
	}
	out, _, err = h.ctl(t, "", "transport.quality")
	if err != nil || !strings.Contains(out, "BANDWIDTH") {
		t.Fatalf("quality: %v\n%s", err, out)
	}
	out, _, err = h.ctl(t, "", "transport.config", "--class", "satellite", "--chunk-size", "32KiB", "--interval", "10m")
	if err != nil || !strings.Contains(out, "CLASS") {
		t.Fatalf("config change: %v\n%s", err, out)
	}
	if got := h.a.Config().Overrides[edgesync.Satellite]; got.ChunkSize != 32<<10 || got.Interval == nil || *got.Interval != 10*time.Minute {
		t.Fatalf("config change not applied: %+v", got)
	}
	out, _, err = h.ctl(t, "", "transport.config")
	t.Logf("ctl transport.config:\n%s", out)
	if err != nil || !strings.Contains(out, "ENDPOINT") || !strings.Contains(out, "core") {
		t.Fatalf("config: %v\n%s", err, out)
	}
	out, _, err = h.ctl(t, "", "transport.stats")
	t.Logf("ctl transport.stats:\n%s", out)
	if err != nil || !strings.Contains(out, "outbox 2 ops") || !strings.Contains(out, "endpoint core") {
		t.Fatalf("stats: %v\n%s", err, out)
	}
	out, _, err = h.ctl(t, "", "--json", "transport.stats")
	var st control.StatsResponse
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Outbox.Ops != 2 {
		t.Fatalf("stats --json: %v\n%s", err, out)
	}
	out, _, err = h.ctl(t, "", "health")
	if err != nil || !strings.HasPrefix(out, "ok: agent site-1") {
		t.Fatalf("health: %v\n%s", err, out)
	}

	// sync.next: lease the alarm to a file, ack it; lease the other, release it
	payload := filepath.Join(h.dir, "op.bin")
	out, _, err = h.ctl(t, "", "transport.bandwidth.sync.next", "--priority", "critical", "--out", payload)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(payload); string(b) != "ALARM overpressure" {
		t.Fatalf("leased payload %q", b)
	}
	id := field(t, out, "id")
	if _, _, err := h.ctl(t, "", "transport.bandwidth.sync.next", "--ack", id); err != nil {
		t.Fatal(err)
	}
	if n := h.ops(t); n != 1 {
		t.Fatalf("after ack the outbox holds %d ops, want 1", n)
	}
	out, _, err = h.ctl(t, "", "transport.bandwidth.sync.next", "--json")
	var lop control.LeasedOp
	if err != nil || json.Unmarshal([]byte(out), &lop) != nil || lop.Key != "cfg" {
		t.Fatalf("sync.next --json: %v\n%s", err, out)
	}
	if _, _, err := h.ctl(t, "", "transport.bandwidth.sync.next", "--release", lop.ID.String()); err != nil {
		t.Fatal(err)
	}
	if st, _ := h.a.Outbox().Stats(); st.Leased != 0 || st.Total.Ops != 1 {
		t.Fatalf("after release: %d ops %d leased", st.Total.Ops, st.Leased)
	}
	if _, errOut, err := h.ctl(t, "", "transport.bandwidth.sync.next", "--priority", "critical"); err != nil || !strings.Contains(errOut, "nothing waiting") {
		t.Fatalf("empty lease: %v %q", err, errOut)
	}

	// The agent's core is not reachable: measure says so; monitor.stop
	// stops the monitor, after which measure, history and a second stop
	// say there is none; monitor.start brings it back.
	_, _, err = h.ctl(t, "", "transport.bandwidth.measure")
	var se *control.StatusError
	if !errors.As(err, &se) || se.Code != "not_connected" {
		t.Fatalf("measure without a connection: want not_connected, got %v", err)
	}
	if _, _, err := h.ctl(t, "", "transport.bandwidth.monitor.stop"); err != nil {
		t.Fatalf("monitor.stop: %v", err)
	}
	for _, cmd := range []string{"transport.bandwidth.measure", "transport.bandwidth.history", "transport.bandwidth.monitor.stop"} {
		_, _, err := h.ctl(t, "", cmd)
		if !errors.As(err, &se) || se.Code != "no_monitor" {
			t.Fatalf("%s after monitor.stop: want no_monitor, got %v", cmd, err)
		}
	}
	if _, _, err := h.ctl(t, "", "transport.bandwidth.monitor.start", "--endpoint", "core"); err != nil {
		t.Fatalf("monitor.start of the configured endpoint: %v", err)
	}
	out, _, err = h.ctl(t, "", "transport.bandwidth.monitor.start", "--endpoint", "backup", "--address", "127.0.0.1:9", "--probe-interval", "10s")
	if err != nil || !strings.Contains(out, "endpoint backup added") {
		t.Fatalf("monitor.start: %v\n%s", err, out)
	}
	if eps := h.a.Endpoints(); len(eps) != 2 {
		t.Fatalf("endpoints after monitor.start: %v", eps)
	}
}

// field returns the value of a "name  value" line of a ctl table.
func field(t *testing.T, out, name string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == name {
			return f[1]
		}
	}
	t.Fatalf("no %q line in:\n%s", name, out)
	return ""
}

// TestCtlUsageErrors checks that mistakes are usage errors that name the
// problem and change nothing.
func TestCtlUsageErrors(t *testing.T) {
	h := startCtlHarness(t, false)
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"transport.teleport"}, `unknown command "transport.teleport"`},
		{[]string{"transport.stats", "extra"}, "unexpected arguments"},
		{[]string{"transport.stats", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"transport.switch"}, "missing pin"},
		{[]string{"transport.switch", "warp"}, "warp"},
		{[]string{"transport.switch", "--to", "auto", "satellite"}, "give one pin"},
		{[]string{"transport.config", "--chunk-size", "1KiB"}, "--class names"},
		{[]string{"transport.config", "--class", "warp", "--chunk-size", "1KiB"}, "--class"},
		{[]string{"transport.config", "--class", "satellite"}, "give at least one"},
		{[]string{"transport.config", "--class", "satellite", "--compression", "maybe"}, "--compression"},
		{[]string{"transport.bandwidth.history", "--window", "-1m"}, "--window"},
		{[]string{"transport.bandwidth.sync.next", "--ack", "xyz"}, "op ID"},
		{[]string{"transport.bandwidth.sync.next", "--ack", "00", "--release", "00"}, "not both"},
		{[]string{"transport.bandwidth.sync.next", "--priority", "urgent"}, "--priority"},
		{[]string{"transport.bandwidth.sync.queue", "-"}, "--priority is required"},
		{[]string{"transport.send"}, "exactly one FILE"},
		{[]string{"transport.send", "--state", "-"}, "--state needs --key"},
		{[]string{"transport.send", "--priority", "urgent", "-"}, "--priority"},
		{[]string{"transport.bandwidth.monitor.start", "--address", "127.0.0.1:9"}, "--endpoint"},
		{[]string{"--addr", "127.0.0.1:1", "health"}, "--token-file go together"},
		{[]string{"put", "--key", "k", "-"}, "--priority is required"},
		{[]string{"put", "--priority", "high"}, "exactly one FILE"},
		{[]string{"put", "--priority", "high", "--summary", "s", "--summary-file", "f", "-"}, "not both"},
		{[]string{"put", "--priority", "high", "--state", "--event", "-"}, "exclude"},
	}
	for _, tc := range cases {
		_, _, err := h.ctl(t, "data", tc.args...)
		var ue *UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ctl %q: want a usage error containing %q, got %v", tc.args, tc.want, err)
		}
	}
	if n := h.ops(t); n != 0 {
		t.Fatalf("usage errors stored %d ops", n)
	}
	// An API refusal is a runtime error with the API's code.
	_, _, err := h.ctl(t, "data", "transport.send", "--endpoint", "mars", "-")
	var se *control.StatusError
	if !errors.As(err, &se) || se.Code != "unknown_endpoint" || errors.As(err, new(*UsageError)) {
		t.Fatalf("send to an unknown endpoint: %v", err)
	}
	// No agent at the socket: a clear error, not a hang.
	err = Run(context.Background(), []string{"ctl", "--socket", filepath.Join(h.dir, "none.sock"), "health"}, Env{})
	if err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Fatalf("ctl without an agent: %v", err)
	}
}

// TestCtlHelp checks every ctl command's --help.
func TestCtlHelp(t *testing.T) {
	for _, c := range append(control.Commands(), "health") {
		var o bytes.Buffer
		err := Run(context.Background(), []string{"ctl", c, "--help"}, Env{Stdout: &o})
		if !errors.Is(err, flag.ErrHelp) || !strings.Contains(o.String(), "Usage: edge-sync ctl "+c) || !strings.Contains(o.String(), "Example") {
			t.Errorf("ctl %s --help: %v\n%s", c, err, o.String())
		}
	}
	var o bytes.Buffer
	if err := Run(context.Background(), []string{"put", "--help"}, Env{Stdout: &o}); !errors.Is(err, flag.ErrHelp) || !strings.Contains(o.String(), "Examples:") {
		t.Errorf("put --help: %v\n%s", err, o.String())
	}
}

// TestCtlSocketFromConfigAndEnv checks where ctl looks for the socket.
func TestCtlSocketFromConfigAndEnv(t *testing.T) {
	h := startCtlHarness(t, false)
	cfgFile := filepath.Join(h.dir, "agent.hcl")
	hcl := `name = "site-1"
data_dir = "` + h.dir + `"
tls {
  ca   = "ca.pem"
  cert = "agent.pem"
  key  = "agent-key.pem"
}
endpoint "core" {
  address = "127.0.0.1:7443"
}
control {
  socket = "` + h.sock + `"
}
`
	if err := os.WriteFile(cfgFile, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	var o bytes.Buffer
	if err := Run(context.Background(), []string{"ctl", "--config", cfgFile, "health"}, Env{Stdout: &o}); err != nil || !strings.HasPrefix(o.String(), "ok") {
		t.Fatalf("ctl --config: %v %q", err, o.String())
	}
	t.Setenv("EDGE_SYNC_SOCKET", h.sock)
	o.Reset()
	if err := Run(context.Background(), []string{"ctl", "health"}, Env{Stdout: &o}); err != nil || !strings.HasPrefix(o.String(), "ok") {
		t.Fatalf("ctl with $EDGE_SYNC_SOCKET: %v %q", err, o.String())
	}
}
