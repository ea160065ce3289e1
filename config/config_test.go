package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

const goodAgent = `
name     = "ship-7"
data_dir = "/tmp/es"

tls {
  ca   = "pki/ca.pem"
  cert = "pki/agent-ship-7.pem"
  key  = "pki/agent-ship-7-key.pem"
}

outbox {
  max_ops      = 500
  max_bytes    = "2GiB"
  max_op_bytes = 1048576
  default_ttl  = { background = "24h", analytics = "72h" }
}

monitor {
  sample_interval    = "250ms"
  hysteresis_percent = 25
  probe_budget_percent = 1
  thresholds {
    satellite_min_rtt = "400ms"
  }
}

profile "satellite" {
  chunk       = "128KiB"
  interval    = "20s"
  concurrency = 2
  mode        = "delta-zstd"
}

endpoint "core" {
  address = "core.example.net:7443"
  monitor {
    window = "10s"
  }
}

control {
  tcp        = "127.0.0.1:7444"
  token_file = "/etc/edge-sync/token"
}
`

func TestParseAgentGood(t *testing.T) {
	c, err := ParseAgent(strings.NewReader(goodAgent), "agent.hcl")
	if err != nil {
		t.Fatalf("ParseAgent: %v", err)
	}
	if c.Name != "ship-7" || c.Outbox.MaxOps != 500 || c.Outbox.MaxBytes != 2<<30 || c.Outbox.MaxOpBytes != 1<<20 {
		t.Errorf("outbox/name not applied: %+v", c)
	}
	if c.Outbox.DefaultTTL[edgesync.Background] != 24*time.Hour || c.Outbox.DefaultTTL[edgesync.Critical] != 0 {
		t.Errorf("default_ttl = %v", c.Outbox.DefaultTTL)
	}
	if c.Monitor.SampleInterval != 250*time.Millisecond || c.Monitor.Classifier.Hysteresis != 0.25 || c.Monitor.Budget.Fraction != 0.01 {
		t.Errorf("monitor = %+v", c.Monitor)
	}
	if c.Monitor.Classifier.SatelliteMinRTT != 400*time.Millisecond || c.Monitor.Classifier.FiberMinBps != 100e6 {
		t.Errorf("thresholds = %+v", c.Monitor.Classifier)
	}
	p := c.Profiles[edgesync.Satellite]
	if p.ChunkSize != 128<<10 || p.Interval == nil || *p.Interval != 20*time.Second || p.Mode != edgesync.SyncDeltaZstd {
		t.Errorf("profile = %+v", p)
	}
	e, ok := c.Endpoint("core")
	if !ok || e.Address != "core.example.net:7443" {
		t.Fatalf("endpoint = %+v, %v", e, ok)
	}
	// The endpoint inherits the agent-wide monitor and overrides its window.
	if e.Monitor.Classifier.Window != 10*time.Second || e.Monitor.SampleInterval != 250*time.Millisecond {
		t.Errorf("endpoint monitor = %+v", e.Monitor)
	}
	if c.OutboxPath() != "/tmp/es/outbox.db" || c.ControlSocket() != "/tmp/es/agent.sock" {
		t.Errorf("paths: %s %s", c.OutboxPath(), c.ControlSocket())
	}
}

// TestParseAgentErrorsNamePosition feeds one bad line at a time and checks
// that the error names the field and the line it is on.
func TestParseAgentErrorsNamePosition(t *testing.T) {
	base := `tls {
  ca = "a"
  cert = "b"
  key = "c"
}
endpoint "core" { address = "h:1" }
`
	cases := []struct {
		name, line, want string
	}{
		{"unknown key", `colour = "blue"`, `Unsupported argument`},
		{"unknown block", `radio { on = true }`, `Unsupported block type`},
		{"wrong type", `outbox { max_ops = "many" }`, `max_ops`},
		{"bad size", `outbox { max_bytes = "lots" }`, `outbox.max_bytes: want a size`},
		{"bad duration", `monitor { window = "5" }`, `monitor.window: want a duration`},
		{"negative duration", `monitor { window = "-5s" }`, `monitor.window: must not be negative`},
		{"range", `outbox { max_ops = 0 }`, `outbox.max_ops: must be at least 1`},
		{"bad ttl priority", `outbox { default_ttl = { urgent = "1h" } }`, `outbox.default_ttl.urgent: unknown priority "urgent"`},
		{"bad class", `profile "dialup" { chunk = "64KiB" }`, `profile "dialup": unknown link class`},
		{"bad mode", `profile "mobile" { mode = "turbo" }`, `profile "mobile".mode: unknown sync mode`},
		{"hysteresis", `monitor { hysteresis_percent = 150 }`, `monitor.hysteresis_percent: must be 0-99`},
		{"endpoint monitor", `endpoint "b" {
  address = "x:2"
  monitor { min_samples = 0 }
}`, `endpoint "b".monitor.min_samples: must be 1-100`},
		{"tcp not loopback", `control {
  tcp = "0.0.0.0:7444"
  token_file = "t"
}`, `control.tcp: must be a loopback address`},
		{"syntax", `outbox {`, `Unclosed configuration block`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := base + tc.line + "\n"
			_, err := ParseAgent(strings.NewReader(src), "agent.hcl")
			if err == nil {
				t.Fatalf("ParseAgent accepted %q", tc.line)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", msg, tc.want)
			}
			// Every problem is on line 7 or later (the case's own lines).
			if !strings.HasPrefix(msg, "agent.hcl:") {
				t.Errorf("error %q does not start with the file name", msg)
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Pos.Start.Line < 7 {
				t.Errorf("error %q: want a FieldError at line >= 7, got %+v", msg, fe)
			}
		})
	}
}

func TestParseAgentRequiresEndpointAndTLS(t *testing.T) {
	_, err := ParseAgent(strings.NewReader(``), "empty.hcl")
	if err == nil {
		t.Fatal("empty config accepted")
	}
	for _, want := range []string{"endpoint: at least one endpoint", "tls.ca: is required", "tls.key: is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestDefaultsValidate(t *testing.T) {
	a := DefaultAgent()
	a.TLS = TLS{CA: "a", Cert: "b", Key: "c"}
	a.Endpoints = []Endpoint{{Name: "core", Address: "core:7443", Monitor: DefaultMonitor()}}
	if err := a.Validate(); err != nil {
		t.Errorf("default agent plus endpoint and TLS: %v", err)
	}
	c := DefaultCore()
	c.TLS = TLS{CA: "a", Cert: "b", Key: "c"}
	if err := c.Validate(); err != nil {
		t.Errorf("default core plus TLS: %v", err)
	}
	// Validate without a file names the field but no position.
	a.Outbox.MaxOps = -1
	err := a.Validate()
	if err == nil || !strings.HasPrefix(err.Error(), "outbox.max_ops:") {
		t.Errorf("Validate: %v", err)
	}
}

func TestParseCore(t *testing.T) {
	src := `
name   = "hq"
listen = "0.0.0.0:7443"
default_quota = "10GiB"
tls {
  ca = "ca.pem"
  cert = "core.pem"
  key = "core-key.pem"
}
store { dedup_retention = "48h" }
agent "ship-7" { quota = "1GiB" }
agent "ship-8" {}
`
	c, err := ParseCore(strings.NewReader(src), "core.hcl")
	if err != nil {
		t.Fatalf("ParseCore: %v", err)
	}
	if q, ok := c.Quota("ship-7"); !ok || q != 1<<30 {
		t.Errorf("Quota(ship-7) = %d, %v", q, ok)
	}
	if q, ok := c.Quota("ship-8"); !ok || q != 10<<30 {
		t.Errorf("Quota(ship-8) = %d, %v", q, ok)
	}
	if _, ok := c.Quota("stranger"); ok {
		t.Error("unlisted agent allowed while agents are listed")
	}
	if c.Store.DedupRetention != 48*time.Hour || c.StorePath() != "/var/lib/edge-sync-core/core.db" {
		t.Errorf("store = %+v", c.Store)
	}
	_, err = ParseCore(strings.NewReader(src+"store { dedup_retention = \"1s\" }\n"), "core.hcl")
	if err == nil {
		t.Fatal("duplicate store block / short retention accepted")
	}
	_, err = ParseCore(strings.NewReader("listen = \"nope\"\ntls {\n ca=\"a\"\n cert=\"b\"\n key=\"c\"\n}\n"), "core.hcl")
	if err == nil || !strings.Contains(err.Error(), "core.hcl:1,1: listen: want host:port") {
		t.Errorf("bad listen: %v", err)
	}
}

func TestOversizeConfigRefused(t *testing.T) {
	big := strings.Repeat("# padding line\n", maxConfigBytes/15+10)
	if _, err := ParseAgent(strings.NewReader(big), "big.hcl"); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversize config: %v", err)
	}
}

const coreTLS = "tls {\n ca = \"a\"\n cert = \"b\"\n key = \"c\"\n}\n"

func TestParseCoreJetStream(t *testing.T) {
	src := coreTLS + `
store {
  backend  = "jetstream"
  urls     = ["nats://n1:4222", "tls://n2:4222", "n3:4222"]
  replicas = 3
  prefix   = "fleet_eu"
  history  = 10
  event_max_age = "2160h"
  user     = "core"
  password = "s3cret"
  tls {
    ca = "nats-ca.pem"
  }
}
`
	c, err := ParseCore(strings.NewReader(src), "core.hcl")
	if err != nil {
		t.Fatalf("ParseCore: %v", err)
	}
	j := c.Store.JetStream
	if c.Store.Backend != BackendJetStream || len(j.URLs) != 3 || j.Replicas != 3 || j.Prefix != "fleet_eu" ||
		j.History != 10 || j.EventMaxAge != 2160*time.Hour || j.User != "core" || j.TLS.CA != "nats-ca.pem" ||
		j.Timeout != 10*time.Second || j.DuplicateWindow != 2*time.Minute {
		t.Fatalf("store = %+v", c.Store)
	}
}

// TestCoreStoreErrors: every bad store setting is refused with its field
// named at its line.
func TestCoreStoreErrors(t *testing.T) {
	for _, tc := range []struct{ store, want string }{
		{`backend = "postgres"`, `core.hcl:7,3: store.backend: want "bbolt" or "jetstream", got "postgres"`},
		{`backend = "jetstream"`, `store.urls: is required for backend "jetstream"`},
		{"backend = \"jetstream\"\n urls = [\"http://x\"]", `core.hcl:8,2: store.urls: want nats://host:port`},
		{"backend = \"jetstream\"\n urls = [\"n:4222\"]\n replicas = 7", `core.hcl:9,2: store.replicas: must be 1-5, got 7`},
		{"backend = \"jetstream\"\n urls = [\"n:4222\"]\n prefix = \"a.b\"", `store.prefix: want letters, digits`},
		{"backend = \"jetstream\"\n urls = [\"n:4222\"]\n history = 65", `store.history: must be 1-64`},
		{"backend = \"jetstream\"\n urls = [\"n:4222\"]\n duplicate_window = \"15s\"", `store.duplicate_window: must be more than twice store.timeout`},
		{"backend = \"jetstream\"\n urls = [\"n:4222\"]\n token = \"t\"\n nkey = \"u.nk\"", `store.credentials: give one way to authenticate`},
		{"backend = \"jetstream\"\n urls = [\"n:4222\"]\n user = \"u\"", `store.user: user and password go together`},
		{"backend = \"jetstream\"\n urls = [\"n:4222\"]\n tls {\n cert = \"c.pem\"\n }", `store.tls: cert and key go together`},
		{"backend = \"jetstream\"\n urls = [\"n:4222\"]\n path = \"/x.db\"", `core.hcl:9,2: store.path: is for backend "bbolt"`},
		{`urls = ["n:4222"]`, `core.hcl:7,3: store.urls: is for backend "jetstream"; set store.backend = "jetstream" to use it`},
		{`replicas = 3`, `store.replicas: is for backend "jetstream"`},
	} {
		_, err := ParseCore(strings.NewReader(coreTLS+"store {\n  "+tc.store+"\n}\n"), "core.hcl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("store { %s }:\n got  %v\n want %s", tc.store, err, tc.want)
		}
	}
}

func TestParseCoreFrameMemory(t *testing.T) {
	const tlsBlock = "tls {\n ca=\"a\"\n cert=\"b\"\n key=\"c\"\n}\n"
	c, err := ParseCore(strings.NewReader(tlsBlock), "core.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.MaxFrameMemory != 256<<20 || c.Limits.MaxConnFrameMemory != 128<<20 {
		t.Errorf("default frame memory %d, per connection %d; want 256 MiB, 128 MiB", c.Limits.MaxFrameMemory, c.Limits.MaxConnFrameMemory)
	}
	c, err = ParseCore(strings.NewReader(tlsBlock+"limits {\n max_frame_memory = \"1GiB\"\n max_frame_memory_per_connection = \"64MiB\"\n}\n"), "core.hcl")
	if err != nil || c.Limits.MaxFrameMemory != 1<<30 || c.Limits.MaxConnFrameMemory != 64<<20 {
		t.Errorf("limits set in the file: %+v, %v", c.Limits, err)
	}
	for _, tc := range []struct{ limits, want string }{
		{"max_frame_memory_per_connection = \"8MiB\"", "core.hcl:7,2: limits.max_frame_memory_per_connection: must be at least 33 MiB"},
		{"max_frame_memory = \"64MiB\"", "core.hcl:7,2: limits.max_frame_memory: must be at least limits.max_frame_memory_per_connection (128 MiB)"},
	} {
		_, err := ParseCore(strings.NewReader(tlsBlock+"limits {\n "+tc.limits+"\n}\n"), "core.hcl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("limits { %s }: %v, want %q", tc.limits, err, tc.want)
		}
	}
}
