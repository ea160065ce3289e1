package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/backoff"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/wire"
	"github.com/edge-sync/edge-sync/wire/lane"
)

// endpoint is one core the agent sends to: its connection loop, its link
// monitor and its sender.
type endpoint struct {
	a    *Agent // the outbox, delta bases and open time the sender uses
	cfg  config.Endpoint
	name string
	log  hclog.Logger
	stop context.CancelFunc

	// What the connection loop takes from the agent.
	agentName   string
	tls         *tls.Config
	listen      func() (net.PacketConn, error) // nil: a UDP socket on an ephemeral port
	disableLane bool
	// disableOpsPerStream keeps one op per stream (Options.DisableOpsPerStream).
	disableOpsPerStream bool
	// disableSummaryFirstPacks keeps each backfill op and each summary on
	// a stream of its own (Options.DisableSummaryFirstPacks).
	disableSummaryFirstPacks bool

	// wake is signalled (without blocking) when an op is enqueued; urgent
	// when it is critical or schema.
	wake, urgent chan struct{}

	// mon measures and classifies the link and owns the link state: the
	// class, the operator's pin, the per-class overrides and the sync
	// parameters. It lives as long as the endpoint;
	// transport.bandwidth.monitor.stop and .start stop its measuring and
	// restart it with new settings, and it keeps the rest meanwhile.
	mon *linkmon.Monitor
	// running is whether run is up (and the monitor may measure); guarded
	// by mu.
	mu      sync.Mutex
	running bool

	conn  atomic.Pointer[quic.Conn]
	lane  atomic.Pointer[laneLink] // the connection's data lane, if any
	stats endpointStats
	full  coreFull // the core refuses ops: its store is full (corefull.go)
	// transfers are the ops being sent, with their progress.
	transfers transfers
	// batch is the sender's batch-interval policy; it outlives sessions.
	batch batcher
	// nextBatch is when the sender opens its next batch, for the drain
	// estimate (backfill_status.go).
	nextBatch batchClock

	tried triedOps

	// addrs is which of the core's addresses is in use (failover.go).
	addrs *addresses

	// budget is the endpoint's data budget (budget.go); nil without one.
	budget *endpointBudget
}

// maxTried bounds the ops an endpoint remembers as tried; beyond it the
// memory is cleared, which costs bandwidth (an eager resend from chunk 0),
// never correctness.
const maxTried = 1 << 16

// triedOps are the ops this process has started sending on the
// endpoint's connections: the core may hold part of them, so their next
// attempt asks where to resume. Safe for concurrent use.
type triedOps struct {
	mu  sync.Mutex
	ids map[edgesync.OpID]struct{}
}

// first records an attempt of id and reports whether it is the first.
func (t *triedOps) first(id edgesync.OpID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.ids[id]; ok {
		return false
	}
	if t.ids == nil || len(t.ids) >= maxTried {
		t.ids = map[edgesync.OpID]struct{}{}
	}
	t.ids[id] = struct{}{}
	return true
}

// forget drops id once the op is settled.
func (t *triedOps) forget(id edgesync.OpID) {
	t.mu.Lock()
	delete(t.ids, id)
	t.mu.Unlock()
}

func newEndpoint(a *Agent, cfg config.Endpoint, overrides map[edgesync.LinkClass]linkmon.Override) (*endpoint, error) {
	var e *endpoint
	log := a.log.Named("endpoint").With("endpoint", cfg.Name)
	mon, err := linkmon.NewMonitor(linkmon.Config(cfg.Monitor), linkmon.MonitorOptions{
		Name:      cfg.Name,
		Logger:    log, // the monitor names its own sub-logger
		StatePath: filepath.Join(a.cfg.DataDir, "link-"+safeName(cfg.Name)+".json"),
		Profiles:  overrides,
		// Probes shrink with the data budget (budget.go); e is set below,
		// before the monitor starts.
		ProbeCapBps: func() float64 { return e.probeCapBps() },
	})
	if err != nil {
		return nil, fmt.Errorf("endpoint %q: %w", cfg.Name, err)
	}
	e = &endpoint{
		a: a, cfg: cfg, name: cfg.Name, log: log,
		agentName: a.cfg.Name, tls: a.opts.TLS, listen: a.opts.ListenPacket, disableLane: a.opts.DisableLane,
		disableOpsPerStream:      a.opts.DisableOpsPerStream,
		disableSummaryFirstPacks: a.opts.DisableSummaryFirstPacks || a.opts.DisablePackedBackfill,
		wake:                     make(chan struct{}, 1),
		urgent:                   make(chan struct{}, 1),
		mon:                      mon,
		addrs:                    newAddresses(cfg),
	}
	if err := e.openBudget(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *endpoint) wakeUp(p edgesync.Priority) {
	e.mon.Busy() // an idle link is sampled at the busy rate again (docs/linkmon.md, "Idle links")
	ch := e.wake
	if p.SendsAtOnce() {
		ch = e.urgent
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// params returns the sync parameters the monitor publishes, their
// generation and a channel closed at their next change.
func (e *endpoint) params() (linkmon.SyncParameters, uint64, <-chan struct{}) {
	return e.mon.Parameters()
}

// run keeps a connection to the core up and runs a session on it, until
// ctx ends; it closes the link monitor startEndpoint started.
func (e *endpoint) run(ctx context.Context) {
	pc, err := e.listenPacket()
	if err != nil {
		e.log.Error("cannot open a UDP socket; endpoint stopped", "error", err)
		e.closeMonitor()
		return
	}
	if _, _, err := lane.RaiseBuffers(pc); err != nil {
		e.log.Warn("small UDP buffers: bursts of packets may be lost (README, \"UDP socket buffers\")", "error", err)
	}
	pc, budgetDone := e.budgetConn(ctx, pc)
	defer budgetDone()
	tr := &quic.Transport{Conn: lane.WrapConn(pc)}
	// The demux is the transport's only reader of non-QUIC packets (the
	// data lane's); it exists before the first dial.
	demux := lane.NewDemux(tr)
	defer func() {
		e.addrs.dropBack()
		demux.Close()
		tr.Close()
		pc.Close()
	}()
	dial := func(ctx context.Context, address string) (*quic.Conn, *wire.Welcome, error) {
		return e.dial(ctx, tr, address)
	}
	defer e.closeMonitor()
	// The link's encoding is warmed while it is idle (presend_warm.go).
	wctx, stopWarm := context.WithCancel(ctx)
	warmDone := make(chan struct{})
	go func() {
		defer close(warmDone)
		e.warmEncodings(wctx)
	}()
	defer func() {
		stopWarm()
		<-warmDone
	}()
	bo := backoff.New(500*time.Millisecond, 30*time.Second)
	lastLogged := time.Time{}
	var spare *spareConn // dialled by the watchdog (watchdog.go)
	defer func() {
		if spare != nil {
			spare.conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeShuttingDown), "")
		}
	}()
	for ctx.Err() == nil {
		var conn *quic.Conn
		var w *wire.Welcome
		var err error
		if spare != nil {
			conn, w, spare = spare.conn, spare.w, nil
		} else {
			conn, w, err = e.connect(ctx, dial)
		}
		if err != nil && ctx.Err() != nil {
			// Shut down while dialling: not a failure to reach the core.
			e.log.Debug("dial stopped: shutting down", "error", err)
			break
		}
		if err != nil {
			e.stats.dialFailures.Add(1)
			e.stats.lastErr.note(err)
			// One line per failure streak every minute, not per attempt.
			if time.Since(lastLogged) > time.Minute {
				logDialFailure(e.log, e.addrs.list, err) // connerror.go
				lastLogged = time.Now()
			}
			bo.Wait(ctx)
			continue
		}
		connectedAt := time.Now() // the backoff resets once the session outlives shortSession
		lastLogged = time.Time{}
		e.log.Info("connected", "core", w.Core, "address", e.addrs.current(), "version", w.Version)
		e.stats.connects.Add(1)
		e.full.connected(e.addrs.current(), time.Now()) // another core: not held by this one's hold (corefull.go)
		e.conn.Store(conn)
		e.attach(conn, tr, w.ProbeSession)
		ln := e.startLane(conn, tr, demux, w)
		e.lane.Store(ln)
		wd := e.startWatchdog(ctx, conn, tr)
		sctx, stopFailBack := e.failBack(ctx, dial)
		packing := !e.disableOpsPerStream && w.Caps.Has(wire.CapOpsPerStream)
		err = e.session(sctx, conn, ln, packing, packing && !e.disableSummaryFirstPacks && w.Caps.Has(wire.CapPackedBackfill),
			!e.disableSummaryFirstPacks && w.Caps.Has(wire.CapSummariesPerStream))
		movedBack := stopFailBack()
		spare = wd.stop()
		if movedBack && spare != nil {
			// The first address answered again: its connection, which
			// connect takes next, wins over the watchdog's to the old one.
			spare.conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeShuttingDown), "")
			spare = nil
		}
		e.lane.Store(nil)
		if ln != nil {
			if err := ln.s.Close(); err != nil {
				e.log.Warn("closing the data lane", "error", err)
			}
			ln.endPresends()
		}
		e.attach(nil, nil, 0)
		e.conn.Store(nil)
		e.addrs.lost(conn)
		conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeShuttingDown), "")
		cause := lostCause(conn, err)
		if ctx.Err() == nil && !movedBack {
			e.log.Warn("connection lost", "error", err)
			e.stats.lastErr.note(fmt.Errorf("connection lost: %w", cause))
		}
		switch {
		case time.Since(connectedAt) >= shortSession:
			bo.Reset()
		case ctx.Err() == nil && !movedBack && spare == nil && coreClosed(cause):
			bo.Wait(ctx) // connerror.go: the core closed it soon after it was made
		}
	}
}

func (e *endpoint) listenPacket() (net.PacketConn, error) {
	if e.listen != nil {
		return e.listen()
	}
	return net.ListenUDP("udp", nil)
}

// dial connects to address, with mutual TLS, and exchanges HELLO and
// WELCOME.
func (e *endpoint) dial(ctx context.Context, tr *quic.Transport, address string) (*quic.Conn, *wire.Welcome, error) {
	addr, err := net.ResolveUDPAddr("udp", address)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve %s: %w", address, err)
	}
	tlsConf := e.tls.Clone()
	tlsConf.NextProtos = []string{wire.ALPN}
	if e.cfg.ServerName != "" {
		tlsConf.ServerName = e.cfg.ServerName
	} else if tlsConf.ServerName == "" {
		host, _, _ := net.SplitHostPort(address)
		tlsConf.ServerName = host
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := tr.Dial(dctx, addr, tlsConf, wire.QUICConfig(64))
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", address, err)
	}
	w, err := e.hello(dctx, conn)
	if err != nil {
		conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeOf(err)), err.Error())
		return nil, nil, err
	}
	return conn, w, nil
}

func (e *endpoint) hello(ctx context.Context, conn *quic.Conn) (*wire.Welcome, error) {
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	defer str.CancelRead(0)
	if dl, ok := ctx.Deadline(); ok {
		_ = str.SetDeadline(dl) // quic-go's Stream.SetDeadline never fails
	}
	st := e.mon.Status()
	h := &wire.Hello{
		Versions:      wire.SupportedVersions,
		Agent:         e.agentName,
		Caps:          e.caps(),
		LastClass:     st.Class,
		LastRTT:       st.Median.RTT,
		LastBandwidth: uint64(max(0, st.Median.BandwidthBps)),
	}
	if err := wire.WriteFrame(str, h); err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	f, err := wire.ReadFrame(str, wire.MaxFrameSize)
	if err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	switch f := f.(type) {
	case *wire.Welcome:
		return f, nil
	case *wire.Error:
		return nil, fmt.Errorf("hello: core refused: %w", wire.ErrorFromCode(f.Code, f.Msg))
	}
	return nil, fmt.Errorf("hello: %w: core answered %s", wire.ErrBadRequest, f.Type())
}

// caps are the capabilities the agent offers in Hello.
func (e *endpoint) caps() wire.Capabilities {
	c := wire.CapZstd | wire.CapDelta | wire.CapSummary | wire.CapResume
	if !e.disableLane {
		c |= wire.CapLane
	}
	if !e.disableOpsPerStream {
		c |= wire.CapOpsPerStream
		if !e.disableSummaryFirstPacks {
			c |= wire.CapPackedBackfill
		}
	}
	if !e.disableSummaryFirstPacks {
		c |= wire.CapSummariesPerStream
	}
	return c
}

// startLane opens the connection's data lane when the core granted it,
// starting at the link's last measured capacity; nil means op data stays
// on streams.
func (e *endpoint) startLane(conn *quic.Conn, tr *quic.Transport, demux *lane.Demux, w *wire.Welcome) *laneLink {
	if e.disableLane || !w.Caps.Has(wire.CapLane) {
		return nil
	}
	bw := e.mon.Status().Median.BandwidthBps
	s, err := lane.NewSession(conn, tr, demux, lane.Config{
		Client:      true,
		InitialRate: int64(max(0, bw)),
		Delivery:    laneDelivery{e},
	})
	if err != nil {
		e.log.Warn("data lane not started; op data stays on streams", "error", err)
		return nil
	}
	e.log.Debug("data lane started", "initial_rate_bps", int64(bw))
	ln := &laneLink{s: s, started: time.Now()}
	if bw <= 0 {
		ln.capacity = func() (float64, time.Time) {
			if m := e.measuring(); m != nil {
				return m.Capacity()
			}
			return 0, time.Time{}
		}
	}
	return ln
}

// errConnLost ends a session whose connection closed.
var errConnLost = errors.New("connection closed")
