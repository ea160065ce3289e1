package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// Errors of the agent's API.
var (
	// ErrUnknownEndpoint means an op or command names an endpoint the agent
	// does not have.
	ErrUnknownEndpoint = errors.New("unknown endpoint")
	// ErrClosed means the agent has been closed.
	ErrClosed = errors.New("agent closed")
	// ErrInvalid marks a call with a missing or malformed argument; the
	// message names it.
	ErrInvalid = errors.New("invalid argument")
)

// invalidf returns an ErrInvalid error with the message format and args.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Options are the parts of an agent that are not in its config file.
type Options struct {
	// TLS is the client side of mutual TLS (see pki.ClientTLSConfig);
	// ServerName is set per endpoint.
	TLS *tls.Config
	// Logger is the root logger; the agent takes named sub-loggers.
	Logger hclog.Logger
	// ListenPacket opens the UDP socket of an endpoint's connections; nil
	// means a socket on an ephemeral port. Tests and the demo wrap it with
	// linksim.
	ListenPacket func() (net.PacketConn, error)
	// DisableLane keeps every op's data on QUIC streams: the agent does
	// not offer the data lane (wire.CapLane) to its cores.
	DisableLane bool
	// DisableOpsPerStream sends every op on a stream of its own: the agent
	// does not offer wire.CapOpsPerStream, with which it packs small ops
	// that are ready together on one stream (docs/design.md, "Packing
	// small ops").
	DisableOpsPerStream bool
	// DisableSummaryFirstPacks sends each summary, and the full data of
	// each op whose summary went first (its backfill), on a stream of its
	// own, as before either was packed: the agent offers neither
	// wire.CapSummariesPerStream nor wire.CapPackedBackfill
	// (docs/backfill.md, "Packs of summary-first ops"). One switch turns
	// off both: they are the packing of one path, and off together it is
	// the path as it was.
	DisableSummaryFirstPacks bool
	// DisablePackedBackfill is DisableSummaryFirstPacks under its former
	// name, which said half of what it does; either turns both offers off.
	//
	// Deprecated: use DisableSummaryFirstPacks.
	DisablePackedBackfill bool
}

// Agent is the edge agent: the outbox, and per endpoint a link monitor and
// a sender. Start runs it; Close stops every goroutine and closes the
// outbox.
type Agent struct {
	cfg   config.Agent
	opts  Options
	log   hclog.Logger
	ob    *outbox.Outbox
	bases *baseCache
	ext   external
	drops dropSubs
	// timelines is each endpoint's last hour, for the status page
	// (timeline.go).
	timelines timelines
	// openedAt is when this process opened the outbox: an op enqueued
	// later, and never tried, cannot be held in part by the core.
	openedAt time.Time

	mu sync.Mutex
	// overrides are the per-class overrides of the sync parameters in
	// force (the config's profile blocks, then transport.config): every
	// endpoint's monitor holds them, and an endpoint added at run time
	// starts with them. Replaced, never changed in place.
	overrides map[edgesync.LinkClass]linkmon.Override
	eps       map[string]*endpoint
	started   bool
	closed    bool
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// New creates cfg.DataDir (mode 0700) if needed, opens the outbox and the
// delta bases under it and returns an agent ready to Start. cfg is used as
// loaded (config/doc.go); opts holds what is not in the file.
func New(cfg config.Agent, opts Options) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	if opts.TLS == nil {
		return nil, errors.New("new agent: TLS is required")
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("new agent: data dir: %w", err)
	}
	openedAt := time.Now()
	ob, err := outbox.Open(cfg.OutboxPath(), outbox.Options{
		MaxOps:     cfg.Outbox.MaxOps,
		MaxBytes:   cfg.Outbox.MaxBytes,
		MaxOpBytes: cfg.Outbox.MaxOpBytes,
		DefaultTTL: cfg.Outbox.DefaultTTL,
		Logger:     opts.Logger.Named("outbox"),
	})
	if err != nil {
		return nil, fmt.Errorf("new agent: %w", err)
	}
	bases, err := openBaseCache(filepath.Join(cfg.DataDir, "bases"), cfg.DeltaBaseBytes)
	if err != nil {
		closeAfterFailure(opts.Logger, ob)
		return nil, fmt.Errorf("new agent: %w", err)
	}
	a := &Agent{cfg: cfg, opts: opts, log: opts.Logger, ob: ob, bases: bases, overrides: overrides(cfg.Profiles), eps: map[string]*endpoint{}, openedAt: openedAt}
	for _, ec := range cfg.Endpoints {
		e, err := newEndpoint(a, ec, a.overrides)
		if err != nil {
			closeAfterFailure(opts.Logger, ob)
			return nil, fmt.Errorf("new agent: %w", err)
		}
		a.eps[ec.Name] = e
	}
	return a, nil
}

// closeAfterFailure closes the outbox New opened before failing; New
// returns the failure, so a close error can only be logged.
func closeAfterFailure(log hclog.Logger, ob *outbox.Outbox) {
	if err := ob.Close(); err != nil {
		log.Warn("closing the outbox after a failed start", "error", err)
	}
}

// overrides turns the config's profile blocks into the adjuster's.
func overrides(profiles map[edgesync.LinkClass]config.Profile) map[edgesync.LinkClass]linkmon.Override {
	out := map[edgesync.LinkClass]linkmon.Override{}
	for class, p := range profiles {
		o := linkmon.Override{
			Mode:        p.Mode,
			Compression: p.Compression,
			ChunkSize:   int(p.ChunkSize),
			Interval:    p.Interval,
			Concurrency: p.Concurrency,
		}
		if lvl, ok := levels[p.Level]; ok {
			o.Level = &lvl
		}
		o.SummaryOnly = p.SummaryOnly
		if p.SummaryPriorities != nil {
			// Config.Validate refused what NewSummarySet would.
			if set, err := linkmon.NewSummarySet(p.SummaryPriorities...); err == nil {
				o.Summaries = &set
			}
		}
		out[class] = o
	}
	return out
}

var levels = map[string]int{"off": 0, "fastest": 1, "default": 2, "better": 3, "best": 4}

// Start launches every endpoint's connection, monitor and sender (each
// link monitor runs once Start returns). They run until Close: ctx bounds the call, and its values reach them, but
// its end does not stop them (docs/architecture.md#lifecycle). Starting a
// started agent does nothing; after Close, Start fails with ErrClosed.
func (a *Agent) Start(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("start agent: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return ErrClosed
	}
	if a.started {
		return nil
	}
	a.started = true
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, e := range a.eps {
		a.startEndpoint(e)
	}
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		a.housekeeping(a.ctx)
	}()
	go func() {
		defer a.wg.Done()
		a.recordTimeline(a.ctx)
	}()
	return nil
}

func (a *Agent) startEndpoint(e *endpoint) {
	ctx, cancel := context.WithCancel(a.ctx)
	e.stop = cancel
	// The link monitor runs once Start returns, so that what asks it at
	// once (monitor.stop, measure) finds it; the run closes it.
	e.startMonitor(ctx)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		e.run(ctx)
	}()
}

// Close stops the endpoints, waits for their goroutines and closes the
// outbox. Ops in flight stay in the outbox and are sent again next time.
func (a *Agent) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	if a.cancel != nil {
		a.cancel()
	}
	a.mu.Unlock()
	a.wg.Wait()
	return a.ob.Close()
}

// Name returns the agent's name (its certificate's).
func (a *Agent) Name() string { return a.cfg.Name }

// Outbox returns the agent's outbox, for introspection.
func (a *Agent) Outbox() *outbox.Outbox { return a.ob }

// Enqueue stores an op durably and wakes its endpoint's sender.
func (a *Agent) Enqueue(ctx context.Context, n outbox.NewOp) (outbox.Op, error) {
	e, err := a.endpoint(n.Endpoint)
	if err != nil {
		return outbox.Op{}, err
	}
	// A large op's first chunks go on the lane while the outbox writes it
	// (presend.go).
	pre := e.startPresend(a.ob, n)
	if pre != nil {
		n.ID, n.Payload = pre.t.op.ID, pre.reader(n.Payload)
	}
	op, err := a.ob.Enqueue(ctx, n)
	pre.enqueued(err)
	if err != nil {
		return op, err
	}
	e.wakeUp(op.Priority)
	return op, nil
}

func (a *Agent) endpoint(name string) (*endpoint, error) {
	if name == "" {
		name = a.DefaultEndpoint()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.eps[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (have %v)", ErrUnknownEndpoint, name, a.endpointNamesLocked())
	}
	return e, nil
}

// DefaultEndpoint returns the endpoint a command means when it names
// none: the first one of the config file. An endpoint added at run time
// (StartMonitor) never becomes the default, whatever its name.
func (a *Agent) DefaultEndpoint() string {
	if len(a.cfg.Endpoints) == 0 {
		return "" // New refuses such a config
	}
	return a.cfg.Endpoints[0].Name
}

func (a *Agent) endpointNamesLocked() []string {
	names := make([]string, 0, len(a.eps))
	for n := range a.eps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// endpointsLocked returns the endpoints in name order.
func (a *Agent) endpointsLocked() []*endpoint {
	eps := make([]*endpoint, 0, len(a.eps))
	for _, n := range a.endpointNamesLocked() {
		eps = append(eps, a.eps[n])
	}
	return eps
}

// endpointList returns the endpoints in name order, as they are now.
func (a *Agent) endpointList() []*endpoint {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.endpointsLocked()
}

// Endpoints lists the endpoint names.
func (a *Agent) Endpoints() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.endpointNamesLocked()
}

// Switch pins an endpoint to a link class or sync mode, or back to auto
// (transport.switch).
func (a *Agent) Switch(endpoint string, pin linkmon.Pin) error {
	if err := pin.Validate(); err != nil {
		return err
	}
	e, err := a.endpoint(endpoint)
	if err != nil {
		return err
	}
	return e.mon.SetPin(pin)
}
