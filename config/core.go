package config

import (
	"io"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/hashicorp/hcl/v2"
)

// Core is the configuration of `edge-sync core`.
type Core struct {
	// Name is the core's name in logs and in its Welcome frame.
	Name string
	// Listen is the UDP address of the QUIC listener; default ":7443".
	Listen  string
	DataDir string // default "/var/lib/edge-sync-core"
	Log     Log
	TLS     TLS
	Store   Store
	// Agents lists the agents allowed in, by certificate name, with their
	// quotas. When empty, every agent with a certificate from the CA is
	// allowed, with DefaultQuota.
	Agents       []CoreAgent
	DefaultQuota int64 // bytes per agent; 0 = unlimited
	Limits       Limits
	Metrics      Metrics
}

// CoreAgent is one agent the core lets in.
type CoreAgent struct {
	Name  string
	Quota int64 // bytes; 0 = DefaultQuota
}

// Store backends.
const (
	BackendBolt      = "bbolt"     // one bbolt file, one core (the default)
	BackendJetStream = "jetstream" // NATS JetStream, shared by any number of cores
)

// Store configures the core's store: a bbolt file (the default), or NATS
// JetStream (docs/jetstream.md).
type Store struct {
	Backend         string        // BackendBolt (default) or BackendJetStream
	Path            string        // bbolt: default DataDir/core.db
	DedupRetention  time.Duration // how long applied op IDs are remembered; default 720h
	DedupMaxEntries int           // bbolt: per agent; default 1,000,000
	EventRetention  int           // events kept per agent; default 1,000,000
	PartialMaxAge   time.Duration // unfinished ops are dropped after; default 168h
	JetStream       JetStream     // backend "jetstream"
}

// JetStream is where a JetStream store lives and how the core connects
// to it. Every core on one JetStream needs the same Prefix, Replicas,
// History and retention.
type JetStream struct {
	URLs     []string // NATS servers, e.g. "nats://n1:4222"; required
	Replicas int      // copies of each bucket and stream, 1-5; default 1
	Prefix   string   // of bucket, stream and subject names; default "edgesync"
	History  int      // versions kept per state key, 1-64; default 5
	// DuplicateWindow is the events stream's de-duplication window;
	// default 2m, and more than twice Timeout.
	DuplicateWindow time.Duration
	EventMaxAge     time.Duration // events older are dropped; 0 (default) = no age limit
	Timeout         time.Duration // per request; default 10s
	// TLS: CA to verify the servers, and a client certificate and key
	// when the servers ask for one. All optional.
	TLS TLS
	// Authentication, at most one: a credentials file (JWT and nkey), an
	// nkey seed file, a user and password, or a token.
	Credentials string
	NKey        string
	User        string
	Password    string
	Token       string
}

// Limits bound what the core accepts from the network.
type Limits struct {
	MaxOpBytes     int64 // default 1 GiB
	MaxFrameBytes  int64 // default 17 MiB (a 16 MiB chunk plus header)
	MaxConnections int   // default 1,000
	MaxStreams     int   // concurrent op streams per connection; default 64
	// MaxFrameMemory bounds the memory the core holds for frames in
	// flight, all connections together: frame bodies as they arrive,
	// decoded chunks, lane data. Default 256 MiB. A reservation past it
	// refuses the op busy; the agent sends it again later.
	MaxFrameMemory int64
	// MaxConnFrameMemory bounds the same per connection; default 128 MiB,
	// at least 33 MiB (a maximal DATA frame and its decoded chunk), at
	// most MaxFrameMemory.
	MaxConnFrameMemory int64
}

// MinConnFrameMemory is the least frame memory a connection may have: one
// maximal DATA frame (16 MiB + 4 KiB) and its decoded chunk, with room.
const MinConnFrameMemory = 33 << 20

// DefaultCore returns the core's defaults.
func DefaultCore() Core {
	return Core{
		Name:    "core",
		Listen:  ":7443",
		DataDir: "/var/lib/edge-sync-core",
		Log:     Log{Level: "info", Format: "text"},
		Store: Store{
			Backend:         BackendBolt,
			DedupRetention:  720 * time.Hour,
			DedupMaxEntries: 1_000_000,
			EventRetention:  1_000_000,
			PartialMaxAge:   168 * time.Hour,
			JetStream: JetStream{Replicas: 1, Prefix: "edgesync", History: 5,
				DuplicateWindow: 2 * time.Minute, Timeout: 10 * time.Second},
		},
		Limits: Limits{MaxOpBytes: 1 << 30, MaxFrameBytes: 17 << 20, MaxConnections: 1000, MaxStreams: 64,
			MaxFrameMemory: 256 << 20, MaxConnFrameMemory: 128 << 20},
	}
}

// StorePath is where the core's store lives.
func (c *Core) StorePath() string {
	if c.Store.Path != "" {
		return c.Store.Path
	}
	return filepath.Join(c.DataDir, "core.db")
}

// Quota returns the byte quota of the named agent and whether it may connect.
func (c *Core) Quota(agent string) (quota int64, allowed bool) {
	if len(c.Agents) == 0 {
		return c.DefaultQuota, true
	}
	for _, a := range c.Agents {
		if a.Name == agent {
			if a.Quota == 0 {
				return c.DefaultQuota, true
			}
			return a.Quota, true
		}
	}
	return 0, false
}

type rawCore struct {
	Name         *string        `hcl:"name,optional"`
	Listen       *string        `hcl:"listen,optional"`
	DataDir      *string        `hcl:"data_dir,optional"`
	DefaultQuota *string        `hcl:"default_quota,optional"`
	Log          *rawLog        `hcl:"log,block"`
	TLS          *rawTLS        `hcl:"tls,block"`
	Store        *rawStore      `hcl:"store,block"`
	Agents       []rawCoreAgent `hcl:"agent,block"`
	Limits       *rawCoreLimits `hcl:"limits,block"`
	Metrics      *rawMetrics    `hcl:"metrics,block"`
}

type rawStore struct {
	Backend         *string `hcl:"backend,optional"`
	Path            *string `hcl:"path,optional"`
	DedupRetention  *string `hcl:"dedup_retention,optional"`
	DedupMaxEntries *int    `hcl:"dedup_max_entries,optional"`
	EventRetention  *int    `hcl:"event_retention,optional"`
	PartialMaxAge   *string `hcl:"partial_max_age,optional"`

	URLs            []string `hcl:"urls,optional"`
	Replicas        *int     `hcl:"replicas,optional"`
	Prefix          *string  `hcl:"prefix,optional"`
	History         *int     `hcl:"history,optional"`
	DuplicateWindow *string  `hcl:"duplicate_window,optional"`
	EventMaxAge     *string  `hcl:"event_max_age,optional"`
	Timeout         *string  `hcl:"timeout,optional"`
	TLS             *rawTLS  `hcl:"tls,block"`
	Credentials     *string  `hcl:"credentials,optional"`
	NKey            *string  `hcl:"nkey,optional"`
	User            *string  `hcl:"user,optional"`
	Password        *string  `hcl:"password,optional"`
	Token           *string  `hcl:"token,optional"`
}

func (s *rawStore) applyJetStream(l *errorList, j *JetStream) {
	if s.URLs != nil {
		j.URLs = s.URLs
	}
	j.Replicas = pick(s.Replicas, j.Replicas)
	j.Prefix = pick(s.Prefix, j.Prefix)
	j.History = pick(s.History, j.History)
	j.DuplicateWindow = parseDuration(l, "store.duplicate_window", s.DuplicateWindow, j.DuplicateWindow)
	j.EventMaxAge = parseDuration(l, "store.event_max_age", s.EventMaxAge, j.EventMaxAge)
	j.Timeout = parseDuration(l, "store.timeout", s.Timeout, j.Timeout)
	if s.TLS != nil {
		s.TLS.apply(&j.TLS)
	}
	j.Credentials = pick(s.Credentials, j.Credentials)
	j.NKey = pick(s.NKey, j.NKey)
	j.User = pick(s.User, j.User)
	j.Password = pick(s.Password, j.Password)
	j.Token = pick(s.Token, j.Token)
}

type rawCoreAgent struct {
	Name  string  `hcl:"name,label"`
	Quota *string `hcl:"quota,optional"`
}

type rawCoreLimits struct {
	MaxOpBytes     *string `hcl:"max_op_bytes,optional"`
	MaxFrameBytes  *string `hcl:"max_frame_bytes,optional"`
	MaxConnections *int    `hcl:"max_connections,optional"`
	MaxStreams     *int    `hcl:"max_streams,optional"`
	// Frame memory, all connections and per connection.
	MaxFrameMemory     *string `hcl:"max_frame_memory,optional"`
	MaxConnFrameMemory *string `hcl:"max_frame_memory_per_connection,optional"`
}

// LoadCore reads a core config file. Relative paths in it (data_dir, the
// tls files, store.path, and the JetStream store's tls files, credentials
// and nkey) are resolved against the file's directory.
func LoadCore(path string) (Core, error) { return loadFile("core", path, ParseCore) }

// ResolvePaths makes the config's relative paths relative to dir (the
// config file's directory); LoadCore calls it.
func (c *Core) ResolvePaths(dir string) {
	j := &c.Store.JetStream
	for _, p := range []*string{&c.DataDir, &c.Store.Path, &j.Credentials, &j.NKey} {
		*p = resolve(dir, *p)
	}
	c.TLS.resolve(dir)
	j.TLS.resolve(dir)
}

// ParseCore reads a core config on top of DefaultCore and validates it.
func ParseCore(r io.Reader, filename string) (Core, error) {
	var raw rawCore
	pos, err := decodeFile(r, filename, &raw)
	if err != nil {
		return Core{}, err
	}
	l := &errorList{pos: pos}
	c := DefaultCore()
	c.Name = pick(raw.Name, c.Name)
	c.Listen = pick(raw.Listen, c.Listen)
	c.DataDir = pick(raw.DataDir, c.DataDir)
	c.DefaultQuota = parseSize(l, "default_quota", raw.DefaultQuota, c.DefaultQuota)
	if raw.Log != nil {
		raw.Log.apply(&c.Log)
	}
	if raw.TLS != nil {
		raw.TLS.apply(&c.TLS)
	}
	if s := raw.Store; s != nil {
		c.Store.Backend = pick(s.Backend, c.Store.Backend)
		c.Store.Path = pick(s.Path, c.Store.Path)
		c.Store.DedupRetention = parseDuration(l, "store.dedup_retention", s.DedupRetention, c.Store.DedupRetention)
		c.Store.DedupMaxEntries = pick(s.DedupMaxEntries, c.Store.DedupMaxEntries)
		c.Store.EventRetention = pick(s.EventRetention, c.Store.EventRetention)
		c.Store.PartialMaxAge = parseDuration(l, "store.partial_max_age", s.PartialMaxAge, c.Store.PartialMaxAge)
		s.applyJetStream(l, &c.Store.JetStream)
	}
	for _, a := range raw.Agents {
		c.Agents = append(c.Agents, CoreAgent{
			Name:  a.Name,
			Quota: parseSize(l, blockPath("", "agent", a.Name)+".quota", a.Quota, 0),
		})
	}
	if lim := raw.Limits; lim != nil {
		c.Limits.MaxOpBytes = parseSize(l, "limits.max_op_bytes", lim.MaxOpBytes, c.Limits.MaxOpBytes)
		c.Limits.MaxFrameBytes = parseSize(l, "limits.max_frame_bytes", lim.MaxFrameBytes, c.Limits.MaxFrameBytes)
		c.Limits.MaxConnections = pick(lim.MaxConnections, c.Limits.MaxConnections)
		c.Limits.MaxStreams = pick(lim.MaxStreams, c.Limits.MaxStreams)
		c.Limits.MaxFrameMemory = parseSize(l, "limits.max_frame_memory", lim.MaxFrameMemory, c.Limits.MaxFrameMemory)
		c.Limits.MaxConnFrameMemory = parseSize(l, "limits.max_frame_memory_per_connection", lim.MaxConnFrameMemory, c.Limits.MaxConnFrameMemory)
	}
	if raw.Metrics != nil {
		c.Metrics.Listen = pick(raw.Metrics.Listen, c.Metrics.Listen)
	}
	if err := l.err(); err != nil {
		return Core{}, err
	}
	if err := c.validate(pos); err != nil {
		return Core{}, err
	}
	return c, nil
}

// Validate checks every field's range.
func (c *Core) Validate() error { return c.validate(nil) }

func (c *Core) validate(pos map[string]hcl.Range) error {
	l := &errorList{pos: pos}
	if c.Name == "" {
		l.addf("name", "must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		l.addf("listen", "want host:port or :port, got %q", c.Listen)
	}
	if c.DataDir == "" {
		l.addf("data_dir", "must not be empty")
	}
	c.Log.validate(l)
	c.TLS.validate(l, "tls.")
	if c.DefaultQuota < 0 {
		l.addf("default_quota", "must not be negative")
	}
	seen := map[string]bool{}
	for _, a := range c.Agents {
		p := blockPath("", "agent", a.Name)
		if a.Name == "" {
			l.addf(p, "agent needs a name label (its certificate's name)")
		}
		if seen[a.Name] {
			l.addf(p, "agent %q is defined twice", a.Name)
		}
		seen[a.Name] = true
	}
	s := c.Store
	switch s.Backend {
	case BackendBolt:
		s.JetStream.validateUnused(l)
	case BackendJetStream:
		if s.Path != "" {
			l.addf("store.path", "is for backend %q; a %q store is named by store.urls and store.prefix", BackendBolt, BackendJetStream)
		}
		s.JetStream.validate(l)
	default:
		l.addf("store.backend", "want %q or %q, got %q", BackendBolt, BackendJetStream, s.Backend)
	}
	if s.DedupRetention < time.Minute {
		l.addf("store.dedup_retention", "must be at least 1m, got %s: shorter makes redelivered ops apply twice", units.FormatDuration(s.DedupRetention))
	}
	if s.DedupMaxEntries < 1000 {
		l.addf("store.dedup_max_entries", "must be at least 1000, got %d", s.DedupMaxEntries)
	}
	if s.EventRetention < 1 {
		l.addf("store.event_retention", "must be at least 1, got %d", s.EventRetention)
	}
	if s.PartialMaxAge < time.Minute {
		l.addf("store.partial_max_age", "must be at least 1m, got %s", units.FormatDuration(s.PartialMaxAge))
	}
	lim := c.Limits
	if lim.MaxOpBytes < 1 {
		l.addf("limits.max_op_bytes", "must be at least 1 byte")
	}
	if lim.MaxFrameBytes < 64<<10 || lim.MaxFrameBytes > 64<<20 {
		l.addf("limits.max_frame_bytes", "must be 64KiB-64MiB, got %s", units.FormatBytes(lim.MaxFrameBytes))
	}
	if lim.MaxConnections < 1 {
		l.addf("limits.max_connections", "must be at least 1, got %d", lim.MaxConnections)
	}
	if lim.MaxStreams < 1 || lim.MaxStreams > 1000 {
		l.addf("limits.max_streams", "must be 1-1000, got %d", lim.MaxStreams)
	}
	if lim.MaxConnFrameMemory < MinConnFrameMemory {
		l.addf("limits.max_frame_memory_per_connection", "must be at least %s (a maximal DATA frame and its decoded chunk), got %s",
			units.FormatBytes(MinConnFrameMemory), units.FormatBytes(lim.MaxConnFrameMemory))
	}
	if lim.MaxFrameMemory < lim.MaxConnFrameMemory {
		l.addf("limits.max_frame_memory", "must be at least limits.max_frame_memory_per_connection (%s), got %s",
			units.FormatBytes(lim.MaxConnFrameMemory), units.FormatBytes(lim.MaxFrameMemory))
	}
	return l.err()
}

var prefixRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// validate checks a JetStream store's settings; fields are named as in
// the store block.
func (j JetStream) validate(l *errorList) {
	if len(j.URLs) == 0 {
		l.addf("store.urls", "is required for backend %q: the NATS servers, e.g. [\"nats://nats-1:4222\"]", BackendJetStream)
	}
	for _, u := range j.URLs {
		if !validNATSURL(u) {
			l.addf("store.urls", "want nats://host:port, tls://host:port or host:port, got %q", u)
		}
	}
	if j.Replicas < 1 || j.Replicas > 5 {
		l.addf("store.replicas", "must be 1-5, got %d", j.Replicas)
	}
	if !prefixRe.MatchString(j.Prefix) {
		l.addf("store.prefix", "want letters, digits, '-' and '_', got %q", j.Prefix)
	}
	if j.History < 1 || j.History > 64 {
		l.addf("store.history", "must be 1-64, got %d", j.History)
	}
	if j.Timeout < time.Second || j.Timeout > time.Minute {
		l.addf("store.timeout", "must be 1s-1m, got %s", units.FormatDuration(j.Timeout))
	}
	if j.DuplicateWindow <= 2*j.Timeout {
		l.addf("store.duplicate_window", "must be more than twice store.timeout (%s), got %s: events could be stored twice", units.FormatDuration(j.Timeout), units.FormatDuration(j.DuplicateWindow))
	}
	if (j.TLS.Cert == "") != (j.TLS.Key == "") {
		l.addf("store.tls", "cert and key go together (a client certificate for the NATS servers)")
	}
	methods := 0
	for _, set := range []bool{j.Credentials != "", j.NKey != "", j.User != "" || j.Password != "", j.Token != ""} {
		if set {
			methods++
		}
	}
	if methods > 1 {
		l.addf("store.credentials", "give one way to authenticate: credentials, nkey, user and password, or token")
	}
	if (j.User == "") != (j.Password == "") {
		l.addf("store.user", "user and password go together")
	}
}

// validateUnused refuses JetStream settings given to a bbolt store.
func (j JetStream) validateUnused(l *errorList) {
	d := DefaultCore().Store.JetStream
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"urls", len(j.URLs) > 0}, {"replicas", j.Replicas != d.Replicas}, {"prefix", j.Prefix != d.Prefix},
		{"history", j.History != d.History}, {"duplicate_window", j.DuplicateWindow != d.DuplicateWindow},
		{"event_max_age", j.EventMaxAge != d.EventMaxAge}, {"timeout", j.Timeout != d.Timeout},
		{"tls", j.TLS != TLS{}}, {"credentials", j.Credentials != ""}, {"nkey", j.NKey != ""},
		{"user", j.User != ""}, {"password", j.Password != ""}, {"token", j.Token != ""},
	} {
		if f.set {
			l.addf("store."+f.name, "is for backend %q; set store.backend = %q to use it", BackendJetStream, BackendJetStream)
		}
	}
}

func validNATSURL(s string) bool {
	if !strings.Contains(s, "://") {
		_, _, err := net.SplitHostPort(s)
		return err == nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
		return true
	}
	return false
}
