package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/admin"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestCoreReadCommands runs core ls, get and tail against a running core
// (through its admin socket: the store file is locked while it runs) and
// against the same core stopped (from its store file): the output is the
// same and is what was stored.
func TestCoreReadCommands(t *testing.T) {
	dir, cfg := testCoreConfig(t)
	cr, stop := startTestCore(t, cfg)
	if fi, err := os.Stat(filepath.Join(cfg.DataDir, "core.sock")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: mode %v, %v; want 0600", fi.Mode(), err)
	}
	apply := func(id byte, kind edgesync.OpKind, key, data string) {
		t.Helper()
		cr.storeOp(t, "site-1", id, kind, key, []byte(data))
	}
	apply(1, edgesync.StateOp, "sensors/pump-1", "4.1 bar")
	apply(2, edgesync.StateOp, "sensors/pump-1", "4.2 bar")
	apply(3, edgesync.StateOp, "config/site", "{}")
	for i := range 5 {
		apply(byte(10+i), edgesync.EventOp, "alarms", fmt.Sprintf("alarm %d", i))
	}
	old := tailPage
	tailPage = 2 // five events: three pages
	t.Cleanup(func() { tailPage = old })

	coreHCL := writeCoreHCL(t, filepath.Join(dir, "core.hcl"), cfg, "")
	out := filepath.Join(dir, "pump-1.out")
	d := []string{"--data-dir", cfg.DataDir}
	commands := [][]string{
		append([]string{"core", "ls"}, d...),
		{"core", "ls", "--config", coreHCL, "--agent", "site-1"},
		append([]string{"core", "ls", "--agent", "site-1", "--prefix", "sensors/", "--json"}, d...),
		{"core", "get", "--data-dir", cfg.DataDir, "--agent", "site-1", "sensors/pump-1"},
		append([]string{"core", "tail", "--agent", "site-1", "--from", "2"}, d...),
		append([]string{"core", "tail", "--agent", "site-1", "--json"}, d...),
	}
	readAll := func(phase string) []string {
		t.Helper()
		var outs []string
		for _, args := range commands {
			o, _, err := run(t, args...)
			if err != nil {
				t.Fatalf("%s: %v: %v", phase, args, err)
			}
			outs = append(outs, o)
		}
		if _, _, err := run(t, "core", "get", "--data-dir", cfg.DataDir, "--agent", "site-1", "-o", out, "sensors/pump-1"); err != nil {
			t.Fatalf("%s: get -o: %v", phase, err)
		}
		outs = append(outs, readFile(t, out))
		_, _, err := run(t, "core", "get", "--data-dir", cfg.DataDir, "--agent", "site-1", "-o", out, "sensors/nope")
		if !errors.Is(err, core.ErrNotFound) {
			t.Fatalf("%s: get of a missing key: want core.ErrNotFound, got %v", phase, err)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: a failed get -o left %s behind: %v", phase, out, err)
		}
		return outs
	}
	running := readAll("core running")
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(cfg.DataDir, "core.sock")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the stopped core left its admin socket: %v", err)
	}
	fromStore := readAll("core stopped")
	for i := range running {
		if running[i] != fromStore[i] {
			t.Errorf("output %d differs between the running core and its store:\n%s\n---\n%s", i, running[i], fromStore[i])
		}
	}

	if running[0] != "site-1\n" {
		t.Errorf("ls: %q, want the one agent", running[0])
	}
	if !strings.Contains(running[1], "config/site") || !strings.Contains(running[1], "sensors/pump-1") {
		t.Errorf("ls --agent:\n%s", running[1])
	}
	var vs []admin.VersionInfo
	if err := json.Unmarshal([]byte(running[2]), &vs); err != nil || len(vs) != 1 || vs[0].Version != 2 || vs[0].Size != 7 {
		t.Errorf("ls --prefix --json: %v %s", err, running[2])
	}
	if running[3] != "4.2 bar" || running[6] != "4.2 bar" {
		t.Errorf("get: %q, get -o: %q; want the newest version", running[3], running[6])
	}
	// One header line, not one a page, then the rows.
	if lines := strings.Split(strings.TrimSpace(running[4]), "\n"); len(lines) != 5 || lines[0] != eventsHeader || !strings.HasPrefix(lines[1], "2\t") || !strings.HasPrefix(lines[4], "5\t") {
		t.Errorf("tail --from 2 over pages of 2: %q, want the header %q and events 2 to 5", lines, eventsHeader)
	}
	if n := bytes.Count([]byte(running[5]), []byte("\n")); n != 5 {
		t.Errorf("tail --json printed %d lines, want 5:\n%s", n, running[5])
	}
}

// testCoreConfig returns a short temporary directory (the admin socket
// lives there) with certificates in it, and a core config on loopback
// that uses them, storing in DIR/core.
// startTestCore starts a core with cfg as `edge-sync core` does. The
// returned stop stops it once: a later call, and the test's cleanup, return
// the first call's error.
func startTestCore(t *testing.T, cfg config.Core) (*coreRunning, func() error) {
	t.Helper()
	cr, stop, err := startCore(context.Background(), cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	stopOnce := sync.OnceValue(stop)
	t.Cleanup(func() { _ = stopOnce() })
	return cr, stopOnce
}

// storeOp applies an op of high priority to agent's store in the running
// core, as its server would; id tells the test's ops apart.
func (cr *coreRunning) storeOp(t *testing.T, agent string, id byte, kind edgesync.OpKind, key string, data []byte) core.Result {
	t.Helper()
	var op edgesync.OpID
	op[0], op[15] = 1, id
	h := core.PartialHeader{OpID: op, Key: key, Kind: kind, Priority: edgesync.High, Size: int64(len(data)), Hash: sha256.Sum256(data)}
	res, err := cr.store.Apply(agent, h, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// writeCoreHCL writes the config file path of cfg's listen address, data
// directory and certificates, with extra after them, and returns path.
func writeCoreHCL(t *testing.T, path string, cfg config.Core, extra string) string {
	t.Helper()
	writeFile(t, path, fmt.Sprintf("listen = %q\ndata_dir = %q\ntls {\n  ca = %q\n  cert = %q\n  key = %q\n}\n%s",
		cfg.Listen, cfg.DataDir, cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key, extra))
	return path
}

// testCerts writes the demo's certificates (`edge-sync certs`) into dir
// and returns dir.
func testCerts(t *testing.T, dir string) string {
	t.Helper()
	if err := demoCerts(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeDemoAgentHCL writes dir/agent.hcl, the config of the demo's agent
// with its data in dir/agent, its certificates in pkiDir (testCerts) and
// extra, and returns its path.
func writeDemoAgentHCL(t *testing.T, dir, pkiDir, extra string) string {
	t.Helper()
	path := filepath.Join(dir, "agent.hcl")
	writeFile(t, path, fmt.Sprintf("data_dir = %q\ntls {\n  ca = %q\n  cert = %q\n  key = %q\n}\n%s\n",
		filepath.Join(dir, "agent"), filepath.Join(pkiDir, "ca.pem"), filepath.Join(pkiDir, "agent-demo-site.pem"),
		filepath.Join(pkiDir, "agent-demo-site-key.pem"), extra))
	return path
}

// testCoreConfig returns a short temporary directory with the demo's
// certificates in dir/pki, and the demo core's config there.
func testCoreConfig(t *testing.T) (string, config.Core) {
	t.Helper()
	dir := testutil.ShortTempDir(t) // the admin socket's path lives here
	return dir, demoCoreConfig(dir, testCerts(t, filepath.Join(dir, "pki")))
}

// TestCoreServesLiveAgents: the core command's admin socket answers the
// running core's per-agent figures (GET /v1/agents/live), which an admin
// API serving a store alone does not: the command wires the server in.
func TestCoreServesLiveAgents(t *testing.T) {
	_, cfg := testCoreConfig(t)
	startTestCore(t, cfg)
	c := admin.NewClient(filepath.Join(cfg.DataDir, "core.sock"))
	defer c.Close()
	live, err := c.LiveAgents(context.Background())
	if err != nil {
		t.Fatalf("live agents from a running core: %v", err)
	}
	if live == nil || len(live) != 0 {
		t.Fatalf("live agents of a core no agent reached: %+v, want []", live)
	}
}
