package config

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/budget"
	"github.com/edge-sync/edge-sync/internal/units"
)

// Agent is the configuration of `edge-sync agent`.
type Agent struct {
	// Name identifies the agent in logs; the core knows it by its
	// certificate's name. Default: the host name.
	Name string
	// DataDir holds the outbox, the delta bases and the last link status.
	// Default: "/var/lib/edge-sync".
	DataDir string
	Log     Log
	TLS     TLS
	Outbox  Outbox
	// Monitor is the link monitor's configuration for every endpoint;
	// an endpoint may override it.
	Monitor Monitor
	// Profiles override the sync parameters of a link class, by class.
	Profiles  map[edgesync.LinkClass]Profile
	Endpoints []Endpoint
	Control   Control
	Metrics   Metrics
	// DeltaBaseBytes bounds the bytes of acknowledged versions kept as delta
	// bases (least recently used evicted). Default 256 MiB.
	DeltaBaseBytes int64
}

// Log configures hclog output.
type Log struct {
	Level  string // trace, debug, info, warn, error; default "info"
	Format string // "text" (default) or "json"
}

// TLS names the PEM files for mutual TLS.
type TLS struct {
	CA   string // CA certificate that signed the peer
	Cert string // this side's certificate
	Key  string // this side's private key (mode 0600)
}

// Outbox bounds the durable queue.
type Outbox struct {
	Path       string `json:"path"`         // default DataDir/outbox.db
	MaxOps     int    `json:"max_ops"`      // default 10,000
	MaxBytes   int64  `json:"max_bytes"`    // default 8 GiB
	MaxOpBytes int64  `json:"max_op_bytes"` // default 1 GiB
	// DefaultTTL is the lifetime of an op of each priority when its
	// producer gave none; 0 means no expiry. In JSON, nanoseconds in
	// priority order (critical first).
	DefaultTTL [edgesync.NumPriorities]time.Duration `json:"default_ttl_ns"`
}

// Endpoint is one core the agent sends to.
type Endpoint struct {
	Name    string `json:"name"`    // label in the config block, e.g. endpoint "core" {}
	Address string `json:"address"` // host:port of the core's QUIC listener; the first of Addresses
	// Addresses are the cores the agent may send this endpoint's ops to,
	// the preferred first (docs/design.md, "Several core addresses"); nil
	// means Address alone.
	Addresses []string `json:"addresses"`
	// FailBack is how often the agent, connected to another than the first
	// address, tries the first again; 0 means DefaultFailBack.
	FailBack   time.Duration `json:"fail_back_ns"`
	ServerName string        `json:"server_name"` // name in the core's certificate; default: host of Address
	// Monitor overrides the agent-wide monitor settings for this endpoint.
	Monitor Monitor `json:"monitor"`
	// Budget is the endpoint's data allowance; nil means none
	// (docs/budget.md).
	Budget *budget.Config `json:"budget,omitempty"`
}

// DefaultFailBack is Endpoint.FailBack's default.
const DefaultFailBack = 30 * time.Second

// AddressList returns the endpoint's addresses, the preferred first.
func (e Endpoint) AddressList() []string {
	if len(e.Addresses) > 0 {
		return e.Addresses
	}
	return []string{e.Address}
}

// Profile overrides the sync parameters of one link class. Zero fields
// keep the built-in value.
type Profile struct {
	Mode        edgesync.SyncMode
	Compression *bool
	Level       string // "fastest", "default", "better", "best"
	ChunkSize   int64
	Interval    *time.Duration
	Concurrency int
	// SummaryOnly turns summaries first (then backfill) on or off for the
	// class; nil keeps the class's (on for satellite). SummaryPriorities,
	// when not nil, are the priorities it applies to (docs/backfill.md).
	SummaryOnly       *bool
	SummaryPriorities []edgesync.Priority
}

// Control configures the local control API.
type Control struct {
	// Socket is the unix socket path (mode 0600); default DataDir/agent.sock.
	// "off" disables it.
	Socket string
	// TCP is an optional loopback address ("127.0.0.1:7444"); it requires a
	// TokenFile.
	TCP string
	// TokenFile holds the bearer token for TCP access.
	TokenFile string
	// MaxBodyBytes bounds a request body; default 1 GiB (payloads stream).
	MaxBodyBytes int64
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Listen string // e.g. "127.0.0.1:9464"; "" disables it
}

// DefaultAgent returns the agent's defaults. It has no endpoint: a config
// must name at least one.
func DefaultAgent() Agent {
	host, _ := os.Hostname()
	if host == "" {
		host = "edge-agent"
	}
	return Agent{
		Name:           host,
		DataDir:        "/var/lib/edge-sync",
		Log:            Log{Level: "info", Format: "text"},
		Outbox:         Outbox{MaxOps: 10_000, MaxBytes: 8 << 30, MaxOpBytes: 1 << 30},
		Monitor:        DefaultMonitor(),
		Profiles:       map[edgesync.LinkClass]Profile{},
		Control:        Control{MaxBodyBytes: 1 << 30},
		DeltaBaseBytes: 256 << 20,
	}
}

// OutboxPath is where the outbox file lives.
func (a *Agent) OutboxPath() string {
	if a.Outbox.Path != "" {
		return a.Outbox.Path
	}
	return filepath.Join(a.DataDir, "outbox.db")
}

// ControlSocket is the control API's unix socket path, or "" when off.
func (a *Agent) ControlSocket() string {
	switch a.Control.Socket {
	case "off":
		return ""
	case "":
		return filepath.Join(a.DataDir, "agent.sock")
	}
	return a.Control.Socket
}

// Endpoint returns the endpoint with the given name.
func (a *Agent) Endpoint(name string) (Endpoint, bool) {
	for _, e := range a.Endpoints {
		if e.Name == name {
			return e, true
		}
	}
	return Endpoint{}, false
}

// LoadAgent reads an agent config file. Relative paths in it (data_dir,
// the tls files, outbox.path, control.socket, control.token_file) are
// resolved against the file's directory, so the file means the same from
// any working directory.
func LoadAgent(path string) (Agent, error) { return loadFile("agent", path, ParseAgent) }

// ResolvePaths makes the config's relative paths relative to dir (the
// config file's directory); LoadAgent calls it. Absolute paths, empty
// ones and control.socket = "off" stay as they are.
func (a *Agent) ResolvePaths(dir string) {
	for _, p := range []*string{&a.DataDir, &a.Outbox.Path, &a.Control.TokenFile} {
		*p = resolve(dir, *p)
	}
	a.TLS.resolve(dir)
	if a.Control.Socket != "off" {
		a.Control.Socket = resolve(dir, a.Control.Socket)
	}
}

// ParseAgent reads an agent config on top of DefaultAgent and validates it.
// filename is used in error positions.
func ParseAgent(r io.Reader, filename string) (Agent, error) {
	var raw rawAgent
	pos, err := decodeFile(r, filename, &raw)
	if err != nil {
		return Agent{}, err
	}
	l := &errorList{pos: pos}
	cfg := DefaultAgent()
	raw.apply(l, &cfg)
	if err := l.err(); err != nil {
		return Agent{}, err
	}
	if err := cfg.validate(pos); err != nil {
		return Agent{}, err
	}
	return cfg, nil
}

// Validate checks every field's range and the relations between fields.
func (a *Agent) Validate() error { return a.validate(nil) }

func (a *Agent) validate(pos map[string]hcl.Range) error {
	l := &errorList{pos: pos}
	if a.Name == "" {
		l.addf("name", "must not be empty")
	}
	if a.DataDir == "" {
		l.addf("data_dir", "must not be empty")
	}
	a.Log.validate(l)
	if len(a.Endpoints) == 0 {
		l.addf("endpoint", `at least one endpoint block is needed, e.g. endpoint "core" { address = "core.example.net:7443" }`)
	}
	seen := map[string]bool{}
	for _, e := range a.Endpoints {
		p := blockPath("", "endpoint", e.Name)
		if e.Name == "" {
			l.addf(p, "endpoint needs a name label")
		}
		if seen[e.Name] {
			l.addf(p, "endpoint %q is defined twice", e.Name)
		}
		seen[e.Name] = true
		if len(e.Addresses) == 0 {
			if _, _, err := net.SplitHostPort(e.Address); err != nil {
				l.addf(p+".address", "want host:port, got %q", e.Address)
			}
		}
		e.validateAddresses(l, p)
		if e.Monitor != a.Monitor { // an inherited monitor is reported once, below
			e.Monitor.validate(l, p+".monitor.")
		}
		validateBudget(l, p+".", e.Budget)
	}
	a.TLS.validate(l, "tls.")
	o := a.Outbox
	if o.MaxOps < 1 {
		l.addf("outbox.max_ops", "must be at least 1, got %d", o.MaxOps)
	}
	if o.MaxOpBytes < 1 {
		l.addf("outbox.max_op_bytes", "must be at least 1 byte, got %d", o.MaxOpBytes)
	}
	if o.MaxBytes < o.MaxOpBytes {
		l.addf("outbox.max_bytes", "must be at least max_op_bytes (%s), got %s", units.FormatBytes(o.MaxOpBytes), units.FormatBytes(o.MaxBytes))
	}
	a.Monitor.validate(l, "monitor.")
	for class, p := range a.Profiles {
		p.validate(l, blockPath("", "profile", class.String())+".")
	}
	if a.Control.TCP != "" {
		host, _, err := net.SplitHostPort(a.Control.TCP)
		ip := net.ParseIP(host)
		switch {
		case err != nil:
			l.addf("control.tcp", "want host:port, got %q", a.Control.TCP)
		case host != "localhost" && (ip == nil || !ip.IsLoopback()):
			l.addf("control.tcp", "must be a loopback address (127.0.0.1, ::1 or localhost), got %q: the control API is not for the network", host)
		}
		if a.Control.TokenFile == "" {
			l.addf("control.token_file", "is required when control.tcp is set")
		}
	}
	if a.Control.MaxBodyBytes < 1 {
		l.addf("control.max_body_bytes", "must be at least 1 byte")
	}
	if a.DeltaBaseBytes < 0 {
		l.addf("delta_base_bytes", "must not be negative")
	}
	return l.err()
}

func (lg Log) validate(l *errorList) {
	switch strings.ToLower(lg.Level) {
	case "trace", "debug", "info", "warn", "error", "off":
	default:
		l.addf("log.level", "want trace, debug, info, warn, error or off, got %q", lg.Level)
	}
	switch lg.Format {
	case "text", "json":
	default:
		l.addf("log.format", "want text or json, got %q", lg.Format)
	}
}

func (t TLS) validate(l *errorList, p string) {
	for _, f := range []struct{ name, v string }{{"ca", t.CA}, {"cert", t.Cert}, {"key", t.Key}} {
		if f.v == "" {
			l.addf(p+f.name, "is required (mutual TLS is always on; create files with `edge-sync certs`)")
		}
	}
}

func (p Profile) validate(l *errorList, prefix string) {
	if p.Mode != 0 && !p.Mode.Valid() {
		l.addf(prefix+"mode", "invalid mode %d", p.Mode)
	}
	switch p.Level {
	case "", "off", "fastest", "default", "better", "best":
	default:
		l.addf(prefix+"compression_level", "want off, fastest, default, better or best, got %q", p.Level)
	}
	if p.ChunkSize != 0 && (p.ChunkSize < 4<<10 || p.ChunkSize > 64<<20) {
		l.addf(prefix+"chunk", "must be 4KiB-64MiB, got %s", units.FormatBytes(p.ChunkSize))
	}
	if p.Concurrency < 0 || p.Concurrency > 64 {
		l.addf(prefix+"concurrency", "must be 1-64, got %d", p.Concurrency)
	}
	p.validateSummaries(l, prefix)
}
