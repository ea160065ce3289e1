package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
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
// state and its sender.
type endpoint struct {
	a    *Agent
	cfg  config.Endpoint
	name string
	log  hclog.Logger
	stop context.CancelFunc

	// wake is signalled (without blocking) when an op is enqueued; urgent
	// when it is critical or schema.
	wake, urgent chan struct{}

	mu   sync.Mutex
	link linkState
	// linkChanged is closed and replaced whenever the parameters change.
	linkChanged chan struct{}

	conn  atomic.Pointer[quic.Conn]
	lane  atomic.Pointer[laneLink] // the connection's data lane, if any
	stats endpointStats

	// mon measures and classifies the link; nil when monitoring is
	// stopped (transport.bandwidth.monitor.stop). Guarded by mu, as is
	// attached, the connection it measures.
	mon            *monitorRun
	attached       attachment
	probeBytesDone atomic.Int64 // probe bytes of monitors stopped so far
	// runCtx is the context of the endpoint's run, for monitors started
	// at run time.
	runCtx context.Context

	tried triedOps
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

// linkState is the endpoint's view of its link: what the monitor measured,
// what the operator pinned, and the parameters that follow.
type linkState struct {
	status  linkmon.Status
	pin     linkmon.Pin
	class   edgesync.LinkClass // effective class (pinned or measured)
	params  linkmon.SyncParameters
	gen     uint64 // counts parameter changes
	since   time.Time
	reason  string
	connect bool // a connection is up
}

func newEndpoint(a *Agent, cfg config.Endpoint) *endpoint {
	e := &endpoint{
		a: a, cfg: cfg, name: cfg.Name,
		log:         a.log.Named("endpoint").With("endpoint", cfg.Name),
		wake:        make(chan struct{}, 1),
		urgent:      make(chan struct{}, 1),
		linkChanged: make(chan struct{}),
	}
	e.link.class = edgesync.Unknown
	e.link.params = a.adjuster().Parameters(edgesync.Unknown, 0)
	e.link.since = time.Now()
	e.link.reason = "no measurement yet"
	return e
}

func (e *endpoint) wakeUp(p edgesync.Priority) {
	ch := e.wake
	if p.SendsAtOnce() {
		ch = e.urgent
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// params returns the current parameters, their generation and a channel
// closed at the next change.
func (e *endpoint) params() (linkmon.SyncParameters, uint64, <-chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.link.params, e.link.gen, e.linkChanged
}

// linkSnapshot returns a copy of the link state.
func (e *endpoint) linkSnapshot() linkState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.link
}

// setStatus records the monitor's classification and recomputes the
// parameters; a change of parameters is logged once and wakes the sender.
func (e *endpoint) setStatus(st linkmon.Status, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.link.status = st
	if reason != "" {
		e.link.reason = reason
	}
	e.recomputeLocked()
}

// setPin applies an operator's pin (transport.switch).
func (e *endpoint) setPin(p linkmon.Pin) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.link.pin = p
	e.link.reason = "operator pin: " + p.String()
	e.recomputeLocked()
}

func (e *endpoint) recomputeLocked() {
	class, p := e.a.adjuster().Effective(e.link.status, e.link.pin)
	if class != e.link.class {
		// The monitor logs the measured class change with its figures; this
		// line adds the effective class (a pin may differ) for debugging.
		e.log.Debug("link class changed", "from", e.link.class.String(), "to", class.String(), "reason", e.link.reason)
		e.link.class = class
		e.link.since = time.Now()
	}
	if p != e.link.params {
		if p.Mode != e.link.params.Mode {
			e.log.Info("sync mode switched", "from", e.link.params.Mode.String(), "to", p.Mode.String(), "params", p.String())
			e.stats.modeSwitches.Add(1)
		}
		e.link.params = p
		e.link.gen++
		close(e.linkChanged)
		e.linkChanged = make(chan struct{})
	}
}

// run keeps a connection to the core up and runs a session on it, until
// ctx ends.
func (e *endpoint) run(ctx context.Context) {
	pc, err := e.listenPacket()
	if err != nil {
		e.log.Error("cannot open a UDP socket; endpoint stopped", "error", err)
		return
	}
	tr := &quic.Transport{Conn: pc}
	// The demux is the transport's only reader of non-QUIC packets (the
	// data lane's); it exists before the first dial.
	demux := lane.NewDemux(tr)
	defer func() {
		demux.Close()
		tr.Close()
		pc.Close()
	}()
	e.mu.Lock()
	e.runCtx = ctx
	e.mu.Unlock()
	if err := e.startMonitor(ctx, e.cfg.Monitor); err != nil {
		e.log.Error("link monitor not started; the link stays unclassified", "error", err)
	}
	defer e.stopMonitor()
	bo := backoff.New(500*time.Millisecond, 30*time.Second)
	lastLogged := time.Time{}
	for ctx.Err() == nil {
		conn, w, err := e.dial(ctx, tr)
		if err != nil {
			e.stats.dialFailures.Add(1)
			// One line per failure streak every minute, not per attempt.
			if time.Since(lastLogged) > time.Minute {
				e.log.Warn("cannot reach the core; retrying with backoff", "address", e.cfg.Address, "error", err)
				lastLogged = time.Now()
			}
			select {
			case <-ctx.Done():
			case <-time.After(bo.Next()):
			}
			continue
		}
		bo.Reset()
		lastLogged = time.Time{}
		e.log.Info("connected", "core", w.Core, "address", e.cfg.Address, "version", w.Version)
		e.stats.connects.Add(1)
		e.conn.Store(conn)
		e.mu.Lock()
		e.link.connect = true
		e.mu.Unlock()
		e.attach(conn, tr, w.ProbeSession)
		ln := e.startLane(conn, tr, demux, w)
		e.lane.Store(ln)
		err = e.session(ctx, conn, ln)
		e.lane.Store(nil)
		if ln != nil {
			_ = ln.s.Close()
		}
		e.attach(nil, nil, 0)
		e.conn.Store(nil)
		e.mu.Lock()
		e.link.connect = false
		e.mu.Unlock()
		conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeShuttingDown), "")
		if ctx.Err() == nil {
			e.log.Warn("connection lost", "error", err)
		}
	}
}

func (e *endpoint) listenPacket() (net.PacketConn, error) {
	if e.a.opts.ListenPacket != nil {
		return e.a.opts.ListenPacket()
	}
	return net.ListenUDP("udp", nil)
}

// dial connects, with mutual TLS, and exchanges HELLO and WELCOME.
func (e *endpoint) dial(ctx context.Context, tr *quic.Transport) (*quic.Conn, *wire.Welcome, error) {
	addr, err := net.ResolveUDPAddr("udp", e.cfg.Address)
	if err != nil {
		return nil, nil, fmt.Errorf("resolve %s: %w", e.cfg.Address, err)
	}
	tlsConf := e.a.opts.TLS.Clone()
	tlsConf.NextProtos = []string{wire.ALPN}
	if e.cfg.ServerName != "" {
		tlsConf.ServerName = e.cfg.ServerName
	} else if tlsConf.ServerName == "" {
		host, _, _ := net.SplitHostPort(e.cfg.Address)
		tlsConf.ServerName = host
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	conn, err := tr.Dial(dctx, addr, tlsConf, wire.QUICConfig(64))
	if err != nil {
		return nil, nil, fmt.Errorf("dial %s: %w", e.cfg.Address, err)
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
		_ = str.SetDeadline(dl)
	}
	st := e.linkSnapshot()
	h := &wire.Hello{
		Versions:      wire.SupportedVersions,
		Agent:         e.a.cfg.Name,
		Caps:          e.caps(),
		LastClass:     st.status.Class,
		LastRTT:       st.status.Median.RTT,
		LastBandwidth: uint64(max(0, st.status.Median.BandwidthBps)),
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
	if !e.a.opts.DisableLane {
		c |= wire.CapLane
	}
	return c
}

// startLane opens the connection's data lane when the core granted it,
// starting at the link's last measured capacity; nil means op data stays
// on streams.
func (e *endpoint) startLane(conn *quic.Conn, tr *quic.Transport, demux *lane.Demux, w *wire.Welcome) *laneLink {
	if e.a.opts.DisableLane || !w.Caps.Has(wire.CapLane) {
		return nil
	}
	st := e.linkSnapshot()
	s, err := lane.NewSession(conn, tr, demux, lane.Config{
		Client:      true,
		InitialRate: int64(max(0, st.status.Median.BandwidthBps)),
		Delivery:    laneDelivery{e},
	})
	if err != nil {
		e.log.Warn("data lane not started; op data stays on streams", "error", err)
		return nil
	}
	e.log.Debug("data lane started", "initial_rate_bps", int64(st.status.Median.BandwidthBps))
	ln := &laneLink{s: s, started: time.Now()}
	if st.status.Median.BandwidthBps <= 0 {
		ln.capacity = func() (float64, time.Time) {
			if m := e.liveMonitor(); m != nil {
				return m.Capacity()
			}
			return 0, time.Time{}
		}
	}
	return ln
}

// errConnLost ends a session whose connection closed.
var errConnLost = errors.New("connection closed")
