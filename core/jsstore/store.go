package jsstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/lifecycle"
)

// Config is a JetStream store's configuration: the limits and retention
// bounds it shares with the bbolt store (core.Config), where the store
// lives, and how it uses JetStream. Zero fields take the defaults
// documented on each field. Every core on one JetStream must use the same
// Prefix and the same bounds.
type Config struct {
	// Limits and retention, as for core.Store, with these differences:
	// InlineMax (default 256 KiB, and at most the server's max_payload
	// less 64 KiB) is the largest op kept in memory while it arrives and
	// stored inside its KV entry or event message; larger ops are chunked
	// in the data stream. EventMaxCount and EventMaxBytes are applied by
	// Sweep, not at each commit. AppliedMaxAge is the applied bucket's max
	// age; AppliedMaxCount, OpenTimeout and VerifyOnOpen do not apply.
	core.Config

	// URLs are the NATS servers to connect to; required.
	URLs []string
	// Options are added to the connection's options: TLS and credentials
	// (OpenStore builds them from the config file).
	Options []nats.Option
	// Prefix starts the name of every bucket and stream and the subjects
	// of the streams; default "edgesync". Letters, digits, '-' and '_'.
	Prefix string
	// Replicas is the number of copies of every bucket and stream (1 to
	// 5); JetStream acknowledges a write once a majority has it. Default 1.
	Replicas int
	// History is how many versions of a key the state bucket keeps (1 to
	// 64); default 5.
	History int
	// DuplicateWindow is the events stream's de-duplication window;
	// default 2 min. It must be more than twice Timeout (docs/jetstream.md,
	// "Exactly once").
	DuplicateWindow time.Duration
	// EventMaxAge, if set, drops events older than it (the events
	// stream's max age).
	EventMaxAge time.Duration
	// Timeout bounds each request to JetStream; default 10 s.
	Timeout time.Duration
	// MemoryBytes bounds the data of small partial ops held in memory
	// (those up to InlineMax); past it, they are staged in JetStream like
	// large ones. Default 64 MiB.
	MemoryBytes int64
	// SweepInterval is how often the store runs Sweep and garbage
	// collection by itself; default 1 min; negative turns it off.
	SweepInterval time.Duration
	// FlushInterval is how often the counters this core changed are added
	// to the shared ones; default 1 s.
	FlushInterval time.Duration
	// ReadOnly binds to the buckets and streams as they are, writes
	// nothing and runs nothing in the background: for reading tools.
	ReadOnly bool
	// Name names the connection in the server's monitoring; default
	// "edge-sync core".
	Name string
	// Logger receives the background work's problems; nil discards.
	Logger hclog.Logger

	// forceBatches commits events in atomic batches with one replica too
	// (tests: the batches' crash safety on one embedded server).
	forceBatches bool
}

var prefixRe = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (c Config) withDefaults() Config {
	inline := c.InlineMax
	c.Config = core.DefaultConfig(c.Config)
	if inline <= 0 {
		c.InlineMax = 256 << 10
	}
	file := config.DefaultCore().Store.JetStream // the config file's defaults, once
	if c.Prefix == "" {
		c.Prefix = file.Prefix
	}
	if c.Replicas <= 0 {
		c.Replicas = file.Replicas
	}
	if c.History <= 0 {
		c.History = file.History
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = file.DuplicateWindow
	}
	if c.Timeout <= 0 {
		c.Timeout = file.Timeout
	}
	if c.MemoryBytes <= 0 {
		c.MemoryBytes = 64 << 20
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Minute
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.Name == "" {
		c.Name = "edge-sync core"
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

func (c Config) validate() error {
	switch {
	case len(c.URLs) == 0:
		return errors.New("no NATS server URLs")
	case !prefixRe.MatchString(c.Prefix):
		return fmt.Errorf("prefix %q: want letters, digits, '-' and '_'", c.Prefix)
	case c.Replicas > 5:
		return fmt.Errorf("replicas %d: want 1 to 5", c.Replicas)
	case c.History > jetstream.KeyValueMaxHistory:
		return fmt.Errorf("history %d: want 1 to %d", c.History, jetstream.KeyValueMaxHistory)
	case c.DuplicateWindow <= 2*c.Timeout:
		return fmt.Errorf("duplicate window %v must be more than twice the timeout %v", c.DuplicateWindow, c.Timeout)
	case (c.Replicas > 1 || c.forceBatches) && c.EventMaxAge > 0 && c.EventMaxAge < c.AppliedMaxAge:
		return fmt.Errorf("event max age %v is shorter than the applied index's max age (dedup_retention) %v: "+
			"the applied markers of events are in the events stream and would age out with them; set it to at least %v",
			c.EventMaxAge, c.AppliedMaxAge, c.AppliedMaxAge)
	case c.ChunkSize > 8<<20:
		return fmt.Errorf("chunk size %d over 8 MiB", c.ChunkSize)
	}
	return nil
}

// Store is a core store in NATS JetStream (docs/jetstream.md): state in a
// KV bucket, events in a stream, large data chunked in a second stream,
// the applied-op index, partial ops and per-agent counters in KV buckets.
// Any number of Stores, in any number of processes, may share one
// JetStream. It is safe for concurrent use.
type Store struct {
	cfg Config
	nc  *nats.Conn
	js  jetstream.JetStream
	n   names

	// The KV buckets, and the streams under them for reads with headers
	// and scans.
	state, summaries, applied, partials, agents jetstream.KeyValue
	stateS, summS, appliedS, partialsS, agentsS jetstream.Stream
	events, data                                jetstream.Stream

	mu     sync.RWMutex // held for reading by every operation, for writing by Close
	closed bool

	mem      memPartials
	records  recentRecords
	counters counters

	// conns are the connections ops' commits use (conns.go); the first
	// is nc.
	conns    []*opConn
	nextConn atomic.Uint64

	// batches: events are committed with their applied markers in one
	// atomic batch (a replicated store); otherwise with an entry in the
	// applied bucket first (events.go). legacyUntil is when the applied
	// bucket holds no more entries of events, markersUntil when the
	// events stream holds no more markers, for a store that changed
	// between the two; zero if it never did.
	batches                   bool
	legacyUntil, markersUntil time.Time
	// markerGuard: an event published without a batch is refused if its
	// op has a marker (a server that knows the header, 2.11 or later:
	// none before can hold markers), so that a core that opened the store
	// without batches before another opened it with them cannot apply an
	// op twice (events.go).
	markerGuard bool
	// layoutChanged is set when the events stream no longer takes events
	// the way this core commits them (checkLayout, events.go).
	layoutChanged atomic.Bool

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ core.Backend = (*Store)(nil)

// Open connects to JetStream, creates or updates the store's buckets and
// streams (binds to them when cfg.ReadOnly), and starts the background
// flush and sweep. The caller closes the Store.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("open jetstream store: %w: %w", core.ErrInvalid, err)
	}
	opts := append([]nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(cfg.Timeout),
	}, cfg.Options...)
	nc, err := nats.Connect(joinURLs(cfg.URLs), opts...)
	if err != nil {
		return nil, fmt.Errorf("open jetstream store: connect to %v: %w", cfg.URLs, err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.Timeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("open jetstream store: %w", err)
	}
	if max := nc.MaxPayload() - 64<<10; cfg.InlineMax > max {
		cfg.InlineMax = max
	}
	if max := nc.MaxPayload() - 4<<10; int64(cfg.ChunkSize) > max {
		cfg.ChunkSize = int(max)
	}
	s := &Store{cfg: cfg, nc: nc, js: js, n: names{cfg.Prefix}, batches: cfg.Replicas > 1 || cfg.forceBatches,
		markerGuard: serverAtLeast(nc.ConnectedServerVersion(), 2, 11)}
	s.mem.init()
	s.counters.init()
	if err := s.bind(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("open jetstream store: %w", err)
	}
	if err := s.openConns(ctx, joinURLs(cfg.URLs), opts); err != nil {
		s.closeConns()
		nc.Close()
		return nil, fmt.Errorf("open jetstream store: %w", err)
	}
	if !cfg.ReadOnly {
		bg, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		s.wg.Go(func() { s.background(bg) })
	}
	return s, nil
}

func joinURLs(urls []string) string {
	out := ""
	for i, u := range urls {
		if i > 0 {
			out += ","
		}
		out += u
	}
	return out
}

// bind creates (unless read-only) and binds the buckets and streams.
func (s *Store) bind(ctx context.Context) error {
	n := s.n
	kvs := []struct {
		bucket  string
		history int
		ttl     time.Duration
		kv      *jetstream.KeyValue
		stream  *jetstream.Stream
	}{
		{n.bucket(bucketState), s.cfg.History, 0, &s.state, &s.stateS},
		{n.bucket(bucketSummaries), 1, 0, &s.summaries, &s.summS},
		{n.bucket(bucketApplied), 1, s.cfg.AppliedMaxAge, &s.applied, &s.appliedS},
		{n.bucket(bucketPartials), 1, 0, &s.partials, &s.partialsS},
		{n.bucket(bucketAgents), 1, 0, &s.agents, &s.agentsS},
	}
	for _, b := range kvs {
		if !s.cfg.ReadOnly {
			cfg := s.kvStreamConfig(b.bucket, b.history, b.ttl)
			if _, err := s.keepLimits(ctx, &cfg, false); err != nil {
				return fmt.Errorf("bucket %s: %w", b.bucket, err)
			}
			if _, err := s.js.CreateOrUpdateStream(ctx, cfg); err != nil {
				return fmt.Errorf("bucket %s: %w", b.bucket, err)
			}
		}
		kv, err := s.js.KeyValue(ctx, b.bucket)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", b.bucket, notFound(err))
		}
		*b.kv = kv
		if *b.stream, err = s.js.Stream(ctx, kvStream(b.bucket)); err != nil {
			return fmt.Errorf("bucket %s: %w", b.bucket, notFound(err))
		}
	}
	streams := []struct {
		cfg    jetstream.StreamConfig
		stream *jetstream.Stream
	}{
		{s.eventsConfig(), &s.events},
		{s.dataConfig(), &s.data},
	}
	for _, st := range streams {
		if !s.cfg.ReadOnly {
			old, err := s.keepLimits(ctx, &st.cfg, true)
			if err != nil {
				return fmt.Errorf("stream %s: %w", st.cfg.Name, err)
			}
			if st.stream == &s.events {
				s.eventsUpgrade(&st.cfg, old)
			}
			if _, err := s.js.CreateOrUpdateStream(ctx, st.cfg); err != nil {
				return fmt.Errorf("stream %s: %w", st.cfg.Name, err)
			}
		}
		var err error
		if *st.stream, err = s.js.Stream(ctx, st.cfg.Name); err != nil {
			return fmt.Errorf("stream %s: %w", st.cfg.Name, notFound(err))
		}
	}
	return s.setWindows(s.events.CachedInfo().Config.Metadata)
}

// eventsUpgrade sets the events stream's metadata from the stream as it
// is (info; nil if there is none yet): a stream of the earlier layout
// gets its legacy window (events.go).
func (s *Store) eventsUpgrade(cfg *jetstream.StreamConfig, info *jetstream.StreamInfo) {
	if info != nil {
		cfg.AllowMsgTTL = cfg.AllowMsgTTL || info.Config.AllowMsgTTL
	}
	cfg.Metadata = s.eventsMetadata(info)
}

// kvStreamConfig is the stream of a KV bucket as nats.go's CreateKeyValue
// makes it, except that direct gets are off: every read goes to the
// stream's leader, so that a core reads what it (or another core) has
// just written, also on a replicated stream.
func (s *Store) kvStreamConfig(bucket string, history int, ttl time.Duration) jetstream.StreamConfig {
	dup := 2 * time.Minute
	if ttl > 0 && ttl < dup {
		dup = ttl
	}
	return jetstream.StreamConfig{
		Name:              kvStream(bucket),
		Description:       "edge-sync core: see docs/jetstream.md",
		Subjects:          []string{"$KV." + bucket + ".>"},
		MaxMsgsPerSubject: int64(history),
		MaxBytes:          -1,
		MaxAge:            ttl,
		MaxMsgSize:        -1,
		MaxMsgs:           -1,
		MaxConsumers:      -1,
		Storage:           jetstream.FileStorage,
		Replicas:          s.cfg.Replicas,
		AllowRollup:       true,
		DenyDelete:        true,
		Duplicates:        dup,
		Discard:           jetstream.DiscardNew,
	}
}

func (s *Store) eventsConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.n.stream(streamEvents),
		Description: "edge-sync core events: see docs/jetstream.md",
		Subjects:    []string{s.n.subject(subjEvents) + ".>", s.n.subject(subjApplied) + ".>"},
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      s.cfg.EventMaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		Duplicates:  s.cfg.DuplicateWindow,
		// At a limit an operator set (max_bytes, max_msgs: keepLimits),
		// a new event is refused, store-full, and its agent keeps it; an
		// old one is never dropped (docs/jetstream.md, "When JetStream is
		// full"). Ages still apply: EventMaxAge, the markers' TTL.
		Discard: jetstream.DiscardNew,
		// An event and its applied marker are one atomic batch on a
		// replicated store; the marker ages out by its TTL (events.go).
		AllowAtomicPublish: s.batches,
		AllowMsgTTL:        s.batches, // kept once set: the server cannot turn it off (eventsUpgrade)
	}
}

func (s *Store) dataConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        s.n.stream(streamData),
		Description: "edge-sync core op data in chunks: see docs/jetstream.md",
		Subjects:    []string{s.n.subject(subjData) + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    s.cfg.Replicas,
		Discard:     jetstream.DiscardNew, // as the events': a stored op's chunks are never dropped
	}
}

// Close stops the background work, adds this core's last counter changes
// to the shared ones and closes the connection. Operations after Close
// return core.ErrClosed.
func (s *Store) Close() error {
	if !lifecycle.MarkClosed(&s.mu, &s.closed) {
		return nil
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	var err error
	if !s.cfg.ReadOnly {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout)
		err = s.flush(ctx)
		cancel()
	}
	s.closeConns()
	s.nc.Close()
	if err != nil {
		return fmt.Errorf("close jetstream store: %w", err)
	}
	return nil
}

// acquire takes the read side of the close lock.
func (s *Store) acquire() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return core.ErrClosed
	}
	return nil
}

func (s *Store) release() { s.mu.RUnlock() }

// ctx returns the context of one request to JetStream.
func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.Timeout)
}

// background flushes the counters and sweeps until ctx ends.
func (s *Store) background(ctx context.Context) {
	flush := time.NewTicker(s.cfg.FlushInterval)
	defer flush.Stop()
	var sweep <-chan time.Time
	if s.cfg.SweepInterval > 0 {
		t := time.NewTicker(s.cfg.SweepInterval)
		defer t.Stop()
		sweep = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-flush.C:
			fctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
			if err := s.flush(fctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Warn("counters not flushed; retrying", "error", err)
			}
			cancel()
		case <-sweep:
			s.checkLayout(ctx)
			s.checkDiscard(ctx)
			if n, err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Warn("sweep failed; retrying at the next interval", "error", err)
			} else if n > 0 {
				s.cfg.Logger.Info("sweep discarded idle partial ops", "count", n)
			}
		}
	}
}

// notFound maps JetStream's "no such stream/bucket/message" to
// core.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) ||
		errors.Is(err, jetstream.ErrMsgNotFound) || errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("%w (%v)", core.ErrNotFound, err)
	}
	return err
}
