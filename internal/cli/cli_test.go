package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err = Run(ctx, args, Env{Stdout: &o, Stderr: &e})
	return o.String(), e.String(), err
}

func TestTopLevelUsage(t *testing.T) {
	out, _, err := run(t, "--help")
	if err != nil || !strings.Contains(out, "Commands:") || !strings.Contains(out, "demo") {
		t.Fatalf("--help: %v\n%s", err, out)
	}
	_, _, err = run(t, "frobnicate")
	var ue *UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %v", err)
	}
	if code := Main(context.Background(), []string{"frobnicate"}, nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Errorf("usage error exit code %d, want 2", code)
	}
	out, _, err = run(t, "version")
	if err != nil || !strings.HasPrefix(out, "edge-sync ") {
		t.Errorf("version: %q, %v", out, err)
	}
}

// Every command answers --help with its usage and examples, and exits 0.
func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands() {
		out, _, err := run(t, c.name, "--help")
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s --help: %v", c.name, err)
		}
		if !strings.Contains(out, "Usage") {
			t.Errorf("%s --help printed no usage:\n%s", c.name, out)
		}
		if c.name != "version" && !strings.Contains(out, "Example") {
			t.Errorf("%s --help has no examples", c.name)
		}
		if code := Main(context.Background(), []string{c.name, "--help"}, nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 0 {
			t.Errorf("%s --help exit code %d", c.name, code)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	pkiDir := testCerts(t, filepath.Join(dir, "pki"))
	coreHCL := writeCoreHCL(t, filepath.Join(dir, "core.hcl"), demoCoreConfig(dir, pkiDir), "")
	out, _, err := run(t, "core", "--config", coreHCL, "--check-config")
	if err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("core --check-config: %v %s", err, out)
	}
	agentHCL := writeDemoAgentHCL(t, dir, pkiDir, `endpoint "core" { address = "127.0.0.1:7443" }`)
	out, _, err = run(t, "agent", "--config", agentHCL, "--check-config")
	if err != nil || !strings.Contains(out, "ok (1 endpoint(s)") {
		t.Fatalf("agent --check-config: %v %s", err, out)
	}
	// A bad value names the file and line; a missing TLS file names it.
	bad := filepath.Join(dir, "bad.hcl")
	writeFile(t, bad, "data_dir = \"x\"\noutbox { max_ops = 0 }\n")
	_, _, err = run(t, "agent", "--config", bad, "--check-config")
	if err == nil || !strings.Contains(err.Error(), "bad.hcl:2") || !strings.Contains(err.Error(), "outbox.max_ops") {
		t.Errorf("bad config: %v", err)
	}
	noTLS := filepath.Join(dir, "notls.hcl")
	writeFile(t, noTLS, strings.Replace(readFile(t, agentHCL), "ca.pem", "missing.pem", 1))
	_, _, err = run(t, "agent", "--config", noTLS, "--check-config")
	if err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Errorf("missing TLS file: %v", err)
	}
	// Usage errors.
	for _, args := range [][]string{{"agent"}, {"core"}, {"agent", "--config", agentHCL, "extra"}, {"core", "--bogus"}, {"core", "get", "--data-dir", dir}} {
		_, _, err := run(t, args...)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%v: want a usage error, got %v", args, err)
		}
	}
}

// TestDemoVerifies runs the README's first command, shortened, and checks
// its verified summary.
func TestDemoVerifies(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for 20 s")
	}
	out, _, err := run(t, "demo", "--duration", "20s", "--large", "2MiB")
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"link → fiber", "link → outage", "link → broadband", "link → satellite-only", "verified at the core", "OK: all"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// The walk switched modes as the link changed, and data held back as
	// summaries on satellite arrived in full afterwards, on satellite too
	// (verified above).
	var switches, summaries, backfilled int
	for _, l := range strings.Split(out, "\n") {
		fmt.Sscanf(l, "mode switches: %d", &switches)
		fmt.Sscanf(l, "summaries sent first: %d", &summaries)
		fmt.Sscanf(l, "arrived as summary first, then in full (backfill): %d", &backfilled)
	}
	if backfilled == 0 {
		t.Errorf("no op arrived as its summary first and then in full:\n%s", out)
	}
	if switches < 3 {
		t.Errorf("only %d mode switches over a five-step link walk:\n%s", switches, out)
	}
	if summaries == 0 {
		t.Errorf("no summaries were sent on the satellite step:\n%s", out)
	}
	if _, _, err := run(t, "demo", "--duration", "1s"); err == nil {
		t.Error("demo accepted --duration 1s")
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
