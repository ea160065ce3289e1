package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// The tests of this file run, each, a command line an operator ran and
// that failed (docs: the everyday moves of the README), through Run with
// real agents and cores.

// TestCoreGetWithFlagsAfterTheKey runs the example `core --help` prints,
// which failed with "want exactly one KEY, got 3 arguments".
func TestCoreGetWithFlagsAfterTheKey(t *testing.T) {
	dir, cfg := testCoreConfig(t)
	cr, _ := startTestCore(t, cfg)
	data := []byte(`{"pressure":4.2}`)
	cr.storeOp(t, "ship-7", 1, edgesync.StateOp, "sensors/pump-3", data)
	writeCoreHCL(t, filepath.Join(dir, "core.hcl"), cfg, "")
	t.Chdir(dir)
	for _, args := range [][]string{
		{"core", "get", "--config", "core.hcl", "--agent", "ship-7", "sensors/pump-3", "-o", "pump-3.json"},
		{"core", "get", "sensors/pump-3", "--config", "core.hcl", "--agent", "ship-7", "--output", "pump-3.json"},
		{"core", "get", "-config", "core.hcl", "-agent", "ship-7", "-o", "pump-3.json", "sensors/pump-3"}, // the flag package's spelling
	} {
		os.Remove(filepath.Join(dir, "pump-3.json"))
		if _, _, err := run(t, args...); err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		if got := readFile(t, filepath.Join(dir, "pump-3.json")); got != string(data) {
			t.Fatalf("%q wrote %q, want %q", args, got, data)
		}
	}
	// A KEY and --event are still one too many.
	if _, _, err := run(t, "core", "get", "sensors/pump-3", "--config", "core.hcl", "--agent", "ship-7", "--event", "1"); !errors.As(err, new(*UsageError)) {
		t.Errorf("KEY and --event: want a usage error, got %v", err)
	}
}

// TestPutWithFlagsAfterTheFile runs `put - --key k --priority high`,
// which failed with "--priority is required".
func TestPutWithFlagsAfterTheFile(t *testing.T) {
	h := startCtlHarness(t, false)
	out, _, err := h.ctl(t, "reading", "put", "-", "--key", "k", "--priority", "high")
	if err != nil {
		t.Fatalf("put - --key k --priority high: %v", err)
	}
	id, err := edgesync.ParseOpID(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("put printed %q, not an op ID", out)
	}
	op, err := h.a.Outbox().Get(id)
	if err != nil || op.Key != "k" || op.Priority != edgesync.High {
		t.Fatalf("stored op %+v, %v; want key k at priority high", op, err)
	}
	// --ttl takes days now.
	out, _, err = h.ctl(t, "x", "put", "-", "--key", "k2", "--priority", "background", "--ttl", "2d")
	if err != nil {
		t.Fatal(err)
	}
	id, _ = edgesync.ParseOpID(strings.TrimSpace(out))
	if op, err := h.a.Outbox().Get(id); err != nil || op.ExpiresAt.Sub(op.EnqueuedAt).Round(time.Hour) != 48*time.Hour {
		t.Fatalf("put --ttl 2d: op expires %v after enqueue (%v), want 48h", op.ExpiresAt.Sub(op.EnqueuedAt), err)
	}
}

// TestVersionAndExitCodes: --version exists; usage errors exit 2,
// runtime errors 1.
func TestVersionAndExitCodes(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-v"}, {"version"}} {
		out, _, err := run(t, args...)
		if err != nil || !regexp.MustCompile(`^edge-sync \S+ \(go[0-9.]+\S*\)\n$`).MatchString(out) {
			t.Errorf("%v: %q, %v", args, out, err)
		}
	}
	var stderr bytes.Buffer
	if code := Main(context.Background(), []string{"put", "-", "--key", "k"}, nil, &bytes.Buffer{}, &stderr); code != 2 {
		t.Errorf("a usage error exits %d, want 2 (%s)", code, stderr.String())
	}
	stderr.Reset()
	if code := Main(context.Background(), []string{"ctl", "health", "--socket", filepath.Join(t.TempDir(), "no.sock")}, nil, &bytes.Buffer{}, &stderr); code != 1 {
		t.Errorf("a runtime error exits %d, want 1 (%s)", code, stderr.String())
	}
	if code := Main(context.Background(), []string{"ctl", "health", "--help"}, nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
		t.Errorf("--help exits %d, want 0", code)
	}
}

// complete runs cobra's completion request as the shells send it and
// returns the words offered.
func completions(t *testing.T, args ...string) []string {
	t.Helper()
	out, _, err := run(t, append([]string{"__complete"}, args...)...)
	if err != nil {
		t.Fatalf("__complete %q: %v", args, err)
	}
	var words []string
	for _, l := range strings.Split(out, "\n") {
		if l == "" || strings.HasPrefix(l, ":") || strings.HasPrefix(l, "Completion ended") {
			continue
		}
		w, _, _ := strings.Cut(l, "\t")
		words = append(words, w)
	}
	return words
}

// TestCompletion: the scripts for the three shells, and the completion of
// ctl's commands, pins, priorities (in their one order) and the running
// agent's endpoints.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "edge-sync", "zsh": "#compdef edge-sync", "fish": "complete -c edge-sync"} {
		out, _, err := run(t, "completion", shell)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("completion %s: %v\n%.200s", shell, err, out)
		}
	}
	if _, _, err := run(t, "completion", "tcsh"); !errors.As(err, new(*UsageError)) {
		t.Errorf("completion tcsh: want a usage error, got %v", err)
	}
	if got := completions(t, "ctl", "transport.bandwidth.s"); !contains(got, "transport.bandwidth.status") || !contains(got, "transport.bandwidth.sync.next") {
		t.Errorf("ctl command names: %q", got)
	}
	if got := completions(t, "ctl", "transport.switch", ""); !contains(got, "auto") || !contains(got, "satellite") || !contains(got, "delta+zstd") {
		t.Errorf("pins: %q", got)
	}
	if got := completions(t, "put", "--priority", ""); strings.Join(got, ",") != "critical,schema,high,normal,analytics,background" {
		t.Errorf("priorities: %q, want them most urgent first", got)
	}
	if got := completions(t, "ctl", "transport.config", "--class", "sat"); !contains(got, "satellite") {
		t.Errorf("classes: %q", got)
	}
	h := startCtlHarness(t, false)
	if got := completions(t, "ctl", "transport.bandwidth.status", "--socket", h.sock, "--endpoint", ""); strings.Join(got, ",") != "core" {
		t.Errorf("endpoints of the running agent: %q, want core", got)
	}
}

func contains(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

// TestCtlWatch follows status: piped, one block per tick; Ctrl-C (the
// context) ends it without an error; --json prints one document a line.
func TestCtlWatch(t *testing.T) {
	h := startCtlHarness(t, false)
	watchFor := func(args []string, re *regexp.Regexp, n int) string {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out testutil.Buffer
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, append([]string{"ctl", "--socket", h.sock}, args...), Env{Stdout: &out, Stderr: &out})
		}()
		if !testutil.Poll(10*time.Second, func() bool { return len(re.FindAllString(out.String(), -1)) >= n }) {
			t.Fatalf("no %d blocks of %q after 10 s:\n%s", n, args, out.String())
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("%q ended with %v, want nil on Ctrl-C", args, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%q did not end within 10 s of Ctrl-C", args)
		}
		return out.String()
	}
	out := watchFor([]string{"transport.bandwidth.status", "--watch", "0.2"}, regexp.MustCompile(`(?m)^edge-sync ctl transport.bandwidth.status  every 200ms  \d\d:\d\d:\d\d$`), 3)
	if strings.Contains(out, "\x1b[") || strings.Count(out, "PRIORITY") < 3 {
		t.Errorf("piped --watch: want plain blocks, each with the status table:\n%s", out)
	}
	out = watchFor([]string{"transport.stats", "--json", "-w=200ms"}, regexp.MustCompile(`(?m)^\{.*"outbox".*\}$`), 2)
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("--watch --json printed a line that is not JSON: %q", l)
		}
	}
	if _, _, err := h.ctl(t, "", "transport.stats", "extra", "--watch"); !errors.As(err, new(*UsageError)) {
		t.Errorf("a usage error under --watch: want it at once, got %v", err)
	}
	if _, _, err := h.ctl(t, "", "transport.switch", "auto", "--watch"); err == nil || !strings.Contains(err.Error(), "unknown flag: --watch") {
		t.Errorf("--watch on a command that changes things: %v", err)
	}
}

// TestAgentNotRunning: no agent (or no core) answers → what to do, not a
// dial error: start it, or, if it runs with another socket, point ctl at
// that one (from a fresh clone, ctl looked at the default socket and did
// not say how to give another).
func TestAgentNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	_, _, err := run(t, "ctl", "transport.bandwidth.status", "--socket", sock)
	want := "is the agent running? no control socket at " + sock + " (start it with: edge-sync agent --config FILE; " +
		"if it runs, point at its socket with --config FILE (its control.socket) or --socket PATH)"
	if err == nil || err.Error() != want {
		t.Errorf("ctl without an agent:\n got %v\nwant %s", err, want)
	}
	_, _, err = run(t, "put", "-", "--key", "k", "--priority", "high", "--socket", sock)
	if err == nil || !strings.HasPrefix(err.Error(), "is the agent running?") {
		t.Errorf("put without an agent: %v", err)
	}
	dataDir := t.TempDir()
	_, _, err = run(t, "core", "ls", "--data-dir", dataDir)
	if err == nil || !strings.Contains(err.Error(), "is the core running?") || !strings.Contains(err.Error(), filepath.Join(dataDir, "core.sock")) {
		t.Errorf("core ls without a core or its store: %v", err)
	}
}

// TestStatusSaysWhyItCannotConnect: a wrong server_name read as "class
// intermittent, 7 consecutive samples unanswered"; status and /metrics
// now show the dial error apart from the class. A DNS failure likewise.
func TestStatusSaysWhyItCannotConnect(t *testing.T) {
	h := startCtlHarnessWith(t, harnessOptions{online: true, serverName: "wrong.example"})
	testutil.WaitFor(t, 30*time.Second, "a failed connection attempt", func() bool {
		st, err := h.a.Status("core")
		return err == nil && st.LastError != nil
	})
	out, _, err := h.ctl(t, "", "transport.bandwidth.status")
	if err != nil || !regexp.MustCompile(`(?m)^connection +cannot connect: .*wrong\.example`).MatchString(out) ||
		!strings.Contains(out, "no connection: the class only sees unanswered samples") {
		t.Fatalf("status with a wrong server_name: %v\n%s", err, out)
	}
	rec := httptest.NewRecorder()
	h.a.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !regexp.MustCompile(`edge_sync_link_connect_error\{endpoint="core",error="[^"]*wrong\.example[^"]*"\} 1`).MatchString(rec.Body.String()) {
		t.Errorf("/metrics has no connect error naming the server name:\n%s", grepLines(rec.Body.String(), "connect"))
	}

	if _, _, err := h.ctl(t, "", "transport.bandwidth.monitor.start", "--endpoint", "nodns", "--address", "no-such-host.invalid:7443"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the DNS failure of endpoint nodns", func() bool {
		st, err := h.a.Status("nodns")
		return err == nil && st.LastError != nil
	})
	out, _, err = h.ctl(t, "", "transport.bandwidth.status", "--endpoint", "nodns")
	if err != nil || !regexp.MustCompile(`(?m)^connection +cannot connect: resolve no-such-host\.invalid:7443`).MatchString(out) {
		t.Fatalf("status of an endpoint whose host does not resolve: %v\n%s", err, out)
	}
}

func grepLines(s, word string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, word) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRunTimeEndpointIsNotTheDefault: an endpoint added with
// monitor.start ("backup", before "core" by name) became the default, and
// `status` then failed with `unknown endpoint ""`. The default is the
// first configured endpoint.
func TestRunTimeEndpointIsNotTheDefault(t *testing.T) {
	h := startCtlHarness(t, false)
	if _, _, err := h.ctl(t, "", "transport.bandwidth.monitor.start", "--endpoint", "backup", "--address", "127.0.0.1:9"); err != nil {
		t.Fatal(err)
	}
	out, _, err := h.ctl(t, "", "transport.bandwidth.status")
	if err != nil || !strings.HasPrefix(out, "endpoint   core (") {
		t.Fatalf("status after adding an endpoint: %v\n%s", err, out)
	}
	out, _, err = h.ctl(t, "data", "put", "-", "--key", "k", "--priority", "normal")
	if err != nil {
		t.Fatal(err)
	}
	id, _ := edgesync.ParseOpID(strings.TrimSpace(out))
	if op, err := h.a.Outbox().Get(id); err != nil || op.Endpoint != "core" {
		t.Fatalf("put after adding an endpoint went to %q (%v), want core", op.Endpoint, err)
	}
	if got := h.a.DefaultEndpoint(); got != "core" {
		t.Errorf("DefaultEndpoint() = %q, want core", got)
	}
}

// TestChunkSizeRangeInUnits: `transport.config --chunk-size 32` said
// "32 must be 1024..67108864 bytes".
func TestChunkSizeRangeInUnits(t *testing.T) {
	h := startCtlHarness(t, false)
	_, _, err := h.ctl(t, "", "transport.config", "--class", "satellite", "--chunk-size", "32")
	want := "--chunk-size 32 is 32 B: want 1 KiB to 64 MiB (e.g. 32KiB)"
	if !errors.As(err, new(*UsageError)) || !strings.Contains(err.Error(), want) {
		t.Errorf("--chunk-size 32: %v; want a usage error with %q", err, want)
	}
	out, _, err := h.ctl(t, "", "transport.config", "--class", "satellite", "--chunk-size", "12025KiB")
	if err != nil || !strings.Contains(out, "chunk=11.7MiB") {
		t.Errorf("a 12025 KiB chunk should read 11.7 MiB: %v\n%s", err, out)
	}
}

// TestSecondAgentOnTheSameDataDir said "open outbox …: timeout".
func TestSecondAgentOnTheSameDataDir(t *testing.T) {
	dir := testutil.ShortTempDir(t) // the socket's path lives here
	testCerts(t, filepath.Join(dir, "pki"))
	cfg := filepath.Join(dir, "agent.hcl")
	writeFile(t, cfg, `name = "demo-site"
data_dir = "data"
tls {
  ca = "pki/ca.pem"
  cert = "pki/agent-demo-site.pem"
  key = "pki/agent-demo-site-key.pem"
}
endpoint "core" { address = "127.0.0.1:9" }
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	go func() { first <- Run(ctx, []string{"agent", "--config", cfg, "--log-level", "error"}, Env{}) }()
	testutil.WaitFor(t, 20*time.Second, "the first agent's control socket", func() bool {
		_, err := os.Stat(filepath.Join(dir, "data", "agent.sock"))
		return err == nil
	})
	_, _, err := run(t, "agent", "--config", cfg)
	want := fmt.Sprintf("another edge-sync agent is using %s (pid %d)", filepath.Join(dir, "data"), os.Getpid())
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, outbox.ErrLocked) {
		t.Errorf("a second agent on the same data dir:\n got %v\nwant %s…", err, want)
	}
	cancel()
	if err := <-first; err != nil {
		t.Errorf("the first agent: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "agent.pid")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stopped agent left its pid file: %v", err)
	}
}

// TestCheckConfigChecks: `core --check-config` printed "ok" for a missing
// CA and the start then failed; the agent's check let a short token
// through; relative paths resolved against the working directory;
// dedup_retention = "30d" was refused.
func TestCheckConfigChecks(t *testing.T) {
	dir := t.TempDir()
	testCerts(t, filepath.Join(dir, "pki"))
	otherCA := t.TempDir()
	testCerts(t, otherCA)
	core := func(name, tls, extra string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, "listen = \"127.0.0.1:0\"\ndata_dir = \"core-data\"\ntls {\n"+tls+"}\n"+extra)
		return p
	}
	goodTLS := "  ca = \"pki/ca.pem\"\n  cert = \"pki/core.pem\"\n  key = \"pki/core-key.pem\"\n"
	t.Chdir(t.TempDir()) // relative paths are the config file's, not ours
	out, _, err := run(t, "core", "--config", core("good.hcl", goodTLS, "store {\n  dedup_retention = \"30d\"\n}\n"), "--check-config")
	if err != nil || !strings.Contains(out, ": ok") {
		t.Fatalf("a good core config with relative paths and a 30d retention: %v %s", err, out)
	}
	for _, tc := range []struct{ name, tls, extra, want string }{
		{"noca.hcl", strings.Replace(goodTLS, "ca.pem", "missing-ca.pem", 1), "", "tls.ca: open " + filepath.Join(dir, "pki/missing-ca.pem")},
		{"otherca.hcl", strings.Replace(goodTLS, "pki/ca.pem", otherCA+"/ca.pem", 1), "", "is not signed by the CA"},
		{"metrics.hcl", goodTLS, "metrics {\n  listen = \"127.0.0.1:99999\"\n}\n", "metrics.listen"},
		{"listen.hcl", goodTLS, "", ""},
	} {
		if tc.want == "" {
			continue
		}
		_, _, err := run(t, "core", "--config", core(tc.name, tc.tls, tc.extra), "--check-config")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("core --check-config with %s: %v; want %q", tc.name, err, tc.want)
		}
	}

	token := filepath.Join(dir, "token")
	writeFile(t, token, "tooshort\n")
	agentHCL := filepath.Join(dir, "agent.hcl")
	writeFile(t, agentHCL, `data_dir = "agent-data"
tls {
  ca = "pki/ca.pem"
  cert = "pki/agent-demo-site.pem"
  key = "pki/agent-demo-site-key.pem"
}
endpoint "core" { address = "127.0.0.1:7443" }
control {
  tcp = "127.0.0.1:7444"
  token_file = "token"
}
`)
	_, _, err = run(t, "agent", "--config", agentHCL, "--check-config")
	if err == nil || !strings.Contains(err.Error(), "control.token_file") || !strings.Contains(err.Error(), "8 characters") {
		t.Errorf("agent --check-config with an 8-character token: %v", err)
	}
	writeFile(t, token, strings.Repeat("x", 32)+"\n")
	if out, _, err := run(t, "agent", "--config", agentHCL, "--check-config"); err != nil || !strings.Contains(out, filepath.Join(dir, "agent-data", "outbox.db")) {
		t.Errorf("agent --check-config with a good token: %v %s", err, out)
	}
}

// TestTransferProgressInStatus: a 1.9 MiB op showed "drain ETA 8s"
// unchanged for 10 s, then vanished. Status now lists the transfer with
// the bytes sent of its size and an ETA that goes down as it goes.
func TestTransferProgressInStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("sends 1.9 MiB over a 2 Mbit/s link")
	}
	slow := linksim.Profile{Name: "slow",
		Up:   linksim.Direction{RateBps: 2e6, Delay: 5 * time.Millisecond, QueueDelay: 200 * time.Millisecond},
		Down: linksim.Direction{RateBps: 20e6, Delay: 5 * time.Millisecond, QueueDelay: 200 * time.Millisecond}}
	h := startCtlHarnessWith(t, harnessOptions{online: true, link: &slow})
	file := filepath.Join(h.dir, "big.bin")
	if err := os.WriteFile(file, testutil.RandomBytes(7, 1900<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.ctl(t, "", "put", file, "--key", "files/big", "--priority", "background"); err != nil {
		t.Fatal(err)
	}
	var first agent.Transfer
	testutil.WaitFor(t, 30*time.Second, "the transfer to move", func() bool {
		ts, err := h.a.Transfers("")
		if err != nil || len(ts) != 1 || ts[0].RateBps == 0 || ts[0].Sent == 0 {
			return false
		}
		first = ts[0]
		return true
	})
	row := regexp.MustCompile(`(?m)^\S+ +files/big +background +([0-9.]+ \S+) of 1\.9 MiB \(\d+%\) +\S+ \S+ +(\S+)$`)
	status := func() (sent, eta string) {
		t.Helper()
		out, _, err := h.ctl(t, "", "transport.bandwidth.status")
		m := row.FindStringSubmatch(out)
		if err != nil || m == nil || !regexp.MustCompile(`(?m)^in flight +1 transfer\(s\)$`).MatchString(out) {
			t.Fatalf("status lists no transfer of files/big with its progress: %v\n%s", err, out)
		}
		return m[1], m[2]
	}
	sent1, eta1 := status()
	testutil.WaitFor(t, 30*time.Second, "another 512 KiB to be sent", func() bool {
		ts, err := h.a.Transfers("")
		return err == nil && len(ts) == 1 && ts[0].Sent >= first.Sent+512<<10
	})
	sent2, eta2 := status()
	d1, err1 := time.ParseDuration(eta1)
	d2, err2 := time.ParseDuration(eta2)
	if sent1 == sent2 || err1 != nil || err2 != nil || d2 >= d1 {
		t.Errorf("status did not move: sent %s then %s, ETA %s then %s", sent1, sent2, eta1, eta2)
	}
	out, _, err := h.ctl(t, "", "transport.bandwidth.status", "--json")
	var st struct {
		Transfers []struct {
			Key  string `json:"key"`
			Size int64  `json:"size"`
			Sent int64  `json:"sent"`
			ETA  int64  `json:"eta_ns"`
		} `json:"transfers"`
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || len(st.Transfers) != 1 || st.Transfers[0].Size != 1900<<10 || st.Transfers[0].Sent == 0 {
		t.Errorf("status --json transfers: %v\n%s", err, out)
	}
	t.Logf("status showed %s (ETA %s) then %s (ETA %s)", sent1, eta1, sent2, eta2)
}
