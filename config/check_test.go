package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// writeConfig writes an HCL file into dir.
func writeConfig(t *testing.T, dir, name, hcl string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(hcl), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Days and weeks are durations in a config file: dedup_retention = "30d"
// was refused before.
func TestDurationsInDaysAndWeeks(t *testing.T) {
	c, err := ParseCore(strings.NewReader(`
data_dir = "/tmp/c"
tls {
  ca = "ca.pem"
  cert = "core.pem"
  key = "core-key.pem"
}
store {
  dedup_retention = "30d"
  partial_max_age = "2w"
}
`), "core.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.DedupRetention != 720*time.Hour || c.Store.PartialMaxAge != 336*time.Hour {
		t.Errorf("dedup_retention %v, partial_max_age %v; want 720h and 336h", c.Store.DedupRetention, c.Store.PartialMaxAge)
	}
	_, err = ParseCore(strings.NewReader("store {\n  dedup_retention = \"30 days\"\n}\n"), "core.hcl")
	if err == nil || !strings.Contains(err.Error(), "core.hcl:2") || !strings.Contains(err.Error(), `"30d"`) {
		t.Errorf("a bad duration: %v", err)
	}
}

// Relative paths in a config file are relative to the file's directory,
// not to the working directory of whoever runs edge-sync.
func TestRelativePathsResolveAgainstTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	agent := writeConfig(t, dir, "agent.hcl", `
data_dir = "data"
tls {
  ca = "pki/ca.pem"
  cert = "pki/agent.pem"
  key = "/abs/agent-key.pem"
}
outbox { path = "../outbox.db" }
control {
  socket = "run/agent.sock"
  tcp = "127.0.0.1:7444"
  token_file = "token"
}
endpoint "core" { address = "127.0.0.1:7443" }
`)
	t.Chdir(t.TempDir()) // somewhere else
	a, err := LoadAgent(agent)
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		a.DataDir: filepath.Join(dir, "data"), a.TLS.CA: filepath.Join(dir, "pki/ca.pem"), a.TLS.Cert: filepath.Join(dir, "pki/agent.pem"),
		a.TLS.Key: "/abs/agent-key.pem", a.Outbox.Path: filepath.Join(filepath.Dir(dir), "outbox.db"),
		a.Control.Socket: filepath.Join(dir, "run/agent.sock"), a.Control.TokenFile: filepath.Join(dir, "token"),
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	off := writeConfig(t, dir, "off.hcl", "data_dir = \"d\"\ntls {\n ca = \"a\"\n cert = \"b\"\n key = \"c\"\n}\ncontrol { socket = \"off\" }\nendpoint \"core\" { address = \"h:1\" }\n")
	if a, err := LoadAgent(off); err != nil || a.ControlSocket() != "" {
		t.Errorf("control.socket = \"off\" became %q (%v)", a.ControlSocket(), err)
	}

	core := writeConfig(t, dir, "core.hcl", `
data_dir = "core-data"
tls {
  ca = "pki/ca.pem"
  cert = "pki/core.pem"
  key = "pki/core-key.pem"
}
store {
  backend = "jetstream"
  urls = ["nats://127.0.0.1:4222"]
  credentials = "nats.creds"
  tls { ca = "nats-ca.pem" }
}
`)
	c, err := LoadCore(core)
	if err != nil {
		t.Fatal(err)
	}
	for got, want := range map[string]string{
		c.DataDir: filepath.Join(dir, "core-data"), c.TLS.Key: filepath.Join(dir, "pki/core-key.pem"),
		c.Store.JetStream.Credentials: filepath.Join(dir, "nats.creds"), c.Store.JetStream.TLS.CA: filepath.Join(dir, "nats-ca.pem"),
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

// checkCore is a core config whose files are those of p, storing in dir.
func checkCore(p *testutil.PKI, dir string) Core {
	c := DefaultCore()
	c.Listen = "127.0.0.1:0"
	c.DataDir = filepath.Join(dir, "core")
	c.TLS = TLS{CA: p.CAFile, Cert: p.CoreCert, Key: p.CoreKey}
	return c
}

// TestCoreCheck: what `core --check-config` printed "ok" for and the start
// then failed on is found by Check, with the field named.
func TestCoreCheck(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	other := testutil.NewPKI(t, "site-1")
	dir := t.TempDir()
	if c := checkCore(p, dir); c.Check() != nil {
		t.Fatalf("a good core config: %v", c.Check())
	}
	if _, err := os.Stat(filepath.Join(dir, "core")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Check created the data dir: %v", err)
	}
	readOnly := filepath.Join(dir, "ro")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		edit  func(c *Core)
		field string
		want  string
	}{
		{"missing CA", func(c *Core) { c.TLS.CA = filepath.Join(dir, "missing.pem") }, "tls.ca", "missing.pem"},
		{"cert of another CA", func(c *Core) { c.TLS.Cert, c.TLS.Key = other.CoreCert, other.CoreKey }, "tls.cert", "not signed by the CA"},
		{"client cert as server cert", func(c *Core) { c.TLS.Cert, c.TLS.Key = p.AgentCert, p.AgentKey }, "tls.cert", "core (server)"},
		{"key of another cert", func(c *Core) { c.TLS.Key = other.CoreKey }, "tls.cert", "private key does not match"},
		{"listen host", func(c *Core) { c.Listen = "no-such-host.invalid:7443" }, "listen", "does not resolve"},
		{"metrics port", func(c *Core) { c.Metrics.Listen = "127.0.0.1:99999" }, "metrics.listen", "does not resolve"},
		{"data dir in a read-only dir", func(c *Core) { c.DataDir = filepath.Join(readOnly, "core") }, "data_dir", "cannot be created in"},
		{"data dir is a file", func(c *Core) { c.DataDir = p.CAFile }, "data_dir", "not a directory"},
	}
	for _, tc := range cases {
		if tc.field == "data_dir" && tc.want == "cannot be created in" && os.Getuid() == 0 {
			continue // root writes anywhere
		}
		c := checkCore(p, dir)
		tc.edit(&c)
		err := c.Check()
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error on %s saying %q, got %v", tc.name, tc.field, tc.want, err)
		}
	}
}

// TestAgentCheck: the agent's check loads its TLS files with their chain
// and enforces the control API's token length.
func TestAgentCheck(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	other := testutil.NewPKI(t, "site-1")
	dir := t.TempDir()
	good := func() Agent {
		a := DefaultAgent()
		a.DataDir = filepath.Join(dir, "agent")
		a.TLS = TLS{CA: p.CAFile, Cert: p.AgentCert, Key: p.AgentKey}
		a.Endpoints = []Endpoint{{Name: "core", Address: "127.0.0.1:7443", Monitor: a.Monitor}}
		return a
	}
	a := good()
	if err := a.Check(); err != nil {
		t.Fatalf("a good agent config: %v", err)
	}
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Control.TCP, a.Control.TokenFile = "127.0.0.1:7444", token
	if err := a.Check(); err == nil || !strings.Contains(err.Error(), "control.token_file") || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("a 5-character token: %v", err)
	}
	a = good()
	a.TLS.Cert, a.TLS.Key = other.AgentCert, other.AgentKey
	if err := a.Check(); err == nil || !strings.Contains(err.Error(), "not signed by the CA") {
		t.Errorf("an agent cert of another CA: %v", err)
	}
}
