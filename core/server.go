package core

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/lifecycle"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/wire"
	"github.com/edge-sync/edge-sync/wire/lane"
)

// ServerConfig configures a Server. TLS and Store are required.
type ServerConfig struct {
	// Name is the core's name, sent in Welcome.
	Name string
	// TLS must require and verify client certificates (see
	// pki.ServerTLSConfig); the agent's name is its certificate's name.
	TLS *tls.Config
	// Store receives the ops (a *Store, or another Backend such as
	// core/jsstore's). The server does not close it.
	Store Backend
	// Allow says whether an agent may connect and its byte quota (0 =
	// unlimited). Nil allows every agent with a certificate from the CA.
	Allow func(agent string) (quota int64, ok bool)
	// MaxOpBytes bounds one op's plain size; default 1 GiB.
	MaxOpBytes int64
	// MaxStreams bounds concurrent op streams per connection; default 64.
	MaxStreams int
	// MaxConnections bounds concurrent agent connections; default 1000.
	MaxConnections int
	// FrameTimeout bounds the wait for the next frame on an op stream;
	// default 2 min.
	FrameTimeout time.Duration
	// MaxFrameMemory bounds the memory held for frames in flight by all
	// connections (see server_memory.go); default the config file's
	// limits.max_frame_memory (256 MiB).
	MaxFrameMemory int64
	// MaxConnFrameMemory bounds it per connection; default the config
	// file's limits.max_frame_memory_per_connection (128 MiB), at least
	// MinConnFrameMemory, at most MaxFrameMemory.
	MaxConnFrameMemory int64
	// SweepInterval is how often the store's Sweep runs (partial ops idle
	// past the store's PartialMaxAge, retention bounds); default 1 h.
	SweepInterval time.Duration
	// DisableLane refuses agents' offer of the data lane (wire.CapLane),
	// so that all op data stays on QUIC streams.
	DisableLane bool
	// DisableOpsPerStream refuses agents' offer of several ops per op
	// stream (wire.CapOpsPerStream; docs/wire.md), so that each op takes
	// a stream of its own, as with agents that do not offer it.
	DisableOpsPerStream bool
	// DisablePackedBackfill refuses agents' offer of ops whose summary
	// went first on a stream of several ops (wire.CapPackedBackfill) and
	// of several summaries on one stream (wire.CapSummariesPerStream).
	DisablePackedBackfill bool
	Logger                hclog.Logger
}

// Server is the core's QUIC receiver. Serve runs it; Close stops it and
// waits for every connection's goroutines.
type Server struct {
	cfg   ServerConfig
	log   hclog.Logger
	stats serverStats
	// agents are the figures of each agent heard from (agents.go).
	agents agentTable
	// probes answers the agents' link probes: pings on QUIC datagrams,
	// packet trains as sealed raw packets on the QUIC socket.
	probes *linkmon.Responder
	// receiving counts the streams receiving each partial op.
	receiving *receivers
	// mem is the core's frame memory; each connection's draws on it.
	mem *memBudget
	// resetKey is the transport's stateless reset key, derived from the
	// TLS key (reset_key.go); nil when the TLS config has none.
	resetKey *quic.StatelessResetKey

	serving lifecycle.Serving
	mu      sync.Mutex
	tr      *quic.Transport
	demux   *lane.Demux
	ln      *quic.Listener
	conns   map[*quic.Conn]string // live connection → agent
	wg      sync.WaitGroup
	ready   chan struct{}
}

// serverStats are the core's counters, read by Stats and /metrics.
type serverStats struct {
	conns, refused              atomic.Int64
	opsApplied, opsDuplicate    atomic.Int64
	opsNacked, summaries        atomic.Int64
	bytesReceived, bytesApplied atomic.Int64
	pings                       atomic.Int64
	laneOps, laneDropped        atomic.Int64
	streamsReset                atomic.Int64
	internalErrors              atomic.Int64
	memRefused                  atomic.Int64
	full                        fullStore // writes refused for want of room (server_storefull.go)
}

// ServerStats is a snapshot of the server's counters.
type ServerStats struct {
	Connections   int64 // live agent connections
	Accepted      int64 // connections accepted since start
	Refused       int64 // connections refused (unknown agent, bad hello)
	OpsApplied    int64
	OpsDuplicate  int64 // ops received again and acknowledged without applying
	OpsNacked     int64
	Summaries     int64
	BytesReceived int64 // encoded payload bytes read from the network
	BytesApplied  int64 // plain bytes stored
	Pings         int64
	LaneOps       int64 // ops committed whose data came on the data lane
	LaneDropped   int64 // lane bytes for no waiting op (abandoned attempts)
	// StreamsReset counts op streams the agent reset, or whose connection
	// went away, before they were answered: the agent's choice or the
	// network's, not an error of the core's.
	StreamsReset int64
	// InternalErrors counts op streams that failed for a reason of the
	// core's own (answered with CodeInternal and logged as errors).
	InternalErrors int64
	// FrameMemory is the memory held for frames in flight now, and
	// FrameMemoryPeak the most held at once since start.
	FrameMemory, FrameMemoryPeak int64
	// FrameMemoryRefused counts reservations of frame memory that did not
	// fit a connection's or the core's bound (each ends an op or a stream busy).
	FrameMemoryRefused int64
	// StoreFull is set while the store has no room: a write found none
	// and no op was stored since. StoreFullRefusals counts the ops and
	// summaries refused for want of room since start (answered
	// store-full).
	StoreFull         bool
	StoreFullRefusals int64
}

// NewServer checks cfg and returns a server ready to Serve.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.TLS == nil || cfg.Store == nil {
		return nil, errors.New("new core server: TLS and Store are required")
	}
	if cfg.TLS.ClientAuth != tls.RequireAndVerifyClientCert {
		return nil, errors.New("new core server: TLS must require and verify client certificates")
	}
	if cfg.Name == "" {
		cfg.Name = "core"
	}
	lim := config.DefaultCore().Limits // the config file's defaults, once
	if cfg.MaxOpBytes <= 0 {
		cfg.MaxOpBytes = lim.MaxOpBytes
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = lim.MaxStreams
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = lim.MaxConnections
	}
	if cfg.FrameTimeout <= 0 {
		cfg.FrameTimeout = 2 * time.Minute
	}
	if cfg.SweepInterval <= 0 {
		cfg.SweepInterval = time.Hour
	}
	if cfg.MaxFrameMemory <= 0 {
		cfg.MaxFrameMemory = lim.MaxFrameMemory
	}
	if cfg.MaxConnFrameMemory <= 0 {
		cfg.MaxConnFrameMemory = min(lim.MaxConnFrameMemory, cfg.MaxFrameMemory)
	}
	if cfg.MaxConnFrameMemory < MinConnFrameMemory || cfg.MaxConnFrameMemory > cfg.MaxFrameMemory {
		return nil, fmt.Errorf("new core server: frame memory per connection %s not in %s..%s (MaxFrameMemory): a connection must hold one maximal DATA frame and its chunk",
			units.FormatBytes(cfg.MaxConnFrameMemory), units.FormatBytes(MinConnFrameMemory), units.FormatBytes(cfg.MaxFrameMemory))
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	tlsConf := cfg.TLS.Clone()
	tlsConf.NextProtos = []string{wire.ALPN}
	cfg.TLS = tlsConf
	s := &Server{cfg: cfg, log: cfg.Logger, probes: linkmon.NewResponder(cfg.Logger.Named("probe")), receiving: newReceivers(),
		conns: map[*quic.Conn]string{}, ready: make(chan struct{})}
	s.mem = newMemBudget("core", cfg.MaxFrameMemory, nil, &s.stats.memRefused)
	var err error
	if s.resetKey, err = statelessResetKey(tlsConf); err != nil {
		s.log.Warn("no QUIC stateless reset key: after a restart, agents wait out the idle timeout (45 s) before they reconnect", "error", err)
	}
	return s, nil
}

// Serve accepts agents on pc until ctx ends or Close is called, then closes
// every connection and waits for their goroutines. It does not close pc.
// It runs once: after Close, or while it runs, it fails with
// net.ErrClosed.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn) error {
	ctx, end, err := s.serving.Begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	if _, _, err := lane.RaiseBuffers(pc); err != nil {
		s.log.Warn("small UDP buffers: bursts of packets may be lost (README, \"UDP socket buffers\")", "error", err)
	}
	tr := &quic.Transport{Conn: lane.WrapConn(pc), StatelessResetKey: s.resetKey}
	// The demux is the transport's only reader of non-QUIC packets: lane
	// packets go to their session, probe trains to the responder.
	demux := lane.NewDemux(tr)
	if err := demux.Handle(wire.ProbeMagic, wire.ProbeMagic, s.probes.HandleRawPacket); err != nil {
		demux.Close()
		return fmt.Errorf("core listen: %w", err)
	}
	qc := wire.QUICConfig(s.cfg.MaxStreams)
	qc.RequireStreamCreditRelease = true // streamCredits (server_credit.go)
	capReceiveWindows(qc, s.cfg.MaxConnFrameMemory)
	ln, err := tr.Listen(s.cfg.TLS, qc)
	if err != nil {
		demux.Close()
		return fmt.Errorf("core listen: %w", err)
	}
	s.mu.Lock()
	s.tr, s.demux, s.ln = tr, demux, ln
	s.mu.Unlock()
	close(s.ready)
	s.log.Info("listening", "addr", pc.LocalAddr().String())
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sweep(ctx)
	}()

	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			break
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(ctx, conn)
		}()
	}
	ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.CloseWithError(quic.ApplicationErrorCode(wire.CodeShuttingDown), "core shutting down")
	}
	s.mu.Unlock()
	s.wg.Wait()
	demux.Close()
	tr.Close()
	return s.probes.Close()
}

// Name returns the core's name, which it sends in Welcome.
func (s *Server) Name() string { return s.cfg.Name }

// sweep runs the store's Sweep every SweepInterval until ctx ends, so
// that partial ops abandoned for longer than the store's PartialMaxAge
// go, and the retention bounds hold, on a core that is never restarted.
// A store that is no Sweeper (one shared by many cores sweeps itself)
// is left alone.
func (s *Server) sweep(ctx context.Context) {
	sw, ok := s.cfg.Store.(Sweeper)
	if !ok {
		return
	}
	tick := time.NewTicker(s.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n, err := sw.Sweep()
		switch {
		case errors.Is(err, ErrClosed):
			return
		case err != nil:
			s.log.Warn("store sweep failed; it runs again in an interval", "error", err, "interval", s.cfg.SweepInterval)
		case n > 0:
			s.log.Info("partial ops discarded after idling past their maximum age", "ops", n)
		}
	}
}

// Addr returns the address Serve listens on, once it has started.
func (s *Server) Addr() net.Addr {
	<-s.ready
	return s.ln.Addr()
}

// Close stops Serve and waits until it has returned, with every
// connection's goroutines; Serve refuses to start after it. It is
// idempotent.
func (s *Server) Close() error {
	s.serving.Close()
	return s.probes.Close()
}

// Stats returns a snapshot of the server's counters.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	live := int64(len(s.conns))
	s.mu.Unlock()
	st := &s.stats
	memUsed, memPeak := s.mem.inUse()
	return ServerStats{
		Connections: live, Accepted: st.conns.Load(), Refused: st.refused.Load(),
		OpsApplied: st.opsApplied.Load(), OpsDuplicate: st.opsDuplicate.Load(),
		OpsNacked: st.opsNacked.Load(), Summaries: st.summaries.Load(),
		BytesReceived: st.bytesReceived.Load(), BytesApplied: st.bytesApplied.Load(),
		Pings: st.pings.Load(), LaneOps: st.laneOps.Load(), LaneDropped: st.laneDropped.Load(),
		StreamsReset: st.streamsReset.Load(), InternalErrors: st.internalErrors.Load(),
		StoreFull: st.full.full.Load(), StoreFullRefusals: st.full.refusals.Load(),
		FrameMemory: memUsed, FrameMemoryPeak: memPeak, FrameMemoryRefused: st.memRefused.Load(),
	}
}

// serveConn runs one agent connection: identify, hello, then op streams and
// datagrams until the connection or ctx ends.
func (s *Server) serveConn(ctx context.Context, conn *quic.Conn) {
	agent, quota, err := s.admit(conn)
	log := s.log.With("remote", conn.RemoteAddr().String())
	if err != nil {
		s.stats.refused.Add(1)
		log.Warn("agent refused", "error", err)
		conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeOf(err)), err.Error())
		return
	}
	log = log.With("agent", agent)
	s.mu.Lock()
	s.conns[conn] = agent
	s.mu.Unlock()
	s.stats.conns.Add(1)
	defer func() {
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
	}()

	session := randUint64()
	mem := newMemBudget("connection", s.cfg.MaxConnFrameMemory, s.mem, &s.stats.memRefused)
	lc, caps, err := s.hello(ctx, conn, agent, quota, session, mem)
	if err != nil {
		s.stats.refused.Add(1)
		log.Warn("hello failed", "error", err)
		conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeOf(err)), err.Error())
		return
	}
	packed, packedBackfill, packedSummaries := caps.Has(wire.CapOpsPerStream), caps.Has(wire.CapPackedBackfill), caps.Has(wire.CapSummariesPerStream)
	log.Info("agent connected", "lane", lc.session != nil, "ops_per_stream", packed, "packed_backfill", packedBackfill, "summaries_per_stream", packedSummaries)
	fig := s.agents.connect(agent)
	defer s.agents.disconnect(fig)
	defer s.probes.Unregister(session)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.serveDatagrams(conn, fig)
	}()
	credits := newStreamCredits(s.cfg.MaxStreams)
	refuser := newStreamRefuser(s.cfg.FrameTimeout, credits, log)
	readAheads := new(readAheadSlots)
	for {
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			break
		}
		fig.seen()
		if err := mem.Reserve(streamStateCost); err != nil {
			refuser.refuse(str, err)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer mem.Release(streamStateCost)
			h := opHandler{store: s.cfg.Store, stats: &s.stats, maxOpBytes: s.cfg.MaxOpBytes, frameTimeout: s.cfg.FrameTimeout,
				agent: agent, fig: fig, str: str, log: log, lane: lc.router, receiving: s.receiving, mem: mem, credits: credits, readAheads: readAheads,
				packed: packed, packedBackfill: packedBackfill, packedSummaries: packedSummaries}
			h.run()
		}()
	}
	conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeShuttingDown), "")
	wg.Wait()
	refuser.wait()
	lc.close()
	if used, _ := mem.inUse(); used != 0 {
		log.Error("frame memory not given back when the connection ended", "bytes", used)
	}
	log.Info("agent disconnected")
}

// admit names the agent from its certificate and checks it may connect.
func (s *Server) admit(conn *quic.Conn) (agent string, quota int64, err error) {
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	if n >= s.cfg.MaxConnections {
		return "", 0, fmt.Errorf("%w: %d connections", wire.ErrBusy, n)
	}
	agent, err = pki.PeerName(conn.ConnectionState().TLS)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", wire.ErrUnknownAgent, err)
	}
	if s.cfg.Allow != nil {
		q, ok := s.cfg.Allow(agent)
		if !ok {
			return "", 0, fmt.Errorf("%w: %q is not in the core's agent list", wire.ErrUnknownAgent, agent)
		}
		quota = q
	}
	return agent, quota, nil
}

// hello reads the agent's Hello on the first stream and answers Welcome;
// it returns the connection's lane and the capabilities granted.
func (s *Server) hello(ctx context.Context, conn *quic.Conn, agent string, quota int64, session uint64, mem *memBudget) (*laneConn, wire.Capabilities, error) {
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	str, err := conn.AcceptStream(hctx)
	if err != nil {
		return nil, 0, fmt.Errorf("wait for hello: %w", err)
	}
	setReadTimeout(str, 15*time.Second)
	f, err := wire.NewReader(str, wire.MaxFrameSize).ReadFrameOf(wire.FrameHello)
	if errors.Is(err, wire.ErrUnexpectedFrame) {
		tellHelloFailed(str, err)
		str.CancelRead(quic.StreamErrorCode(wire.CodeBadRequest))
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read hello: %w", err)
	}
	h := f.(*wire.Hello)
	v, err := wire.Negotiate(h.Versions)
	if err != nil {
		tellHelloFailed(str, err)
		return nil, 0, err
	}
	if h.Agent != agent {
		s.log.Debug("hello names another agent than the certificate", "hello", h.Agent, "cert", agent)
	}
	left := uint64(wire.QuotaUnlimited)
	if quota > 0 {
		// A store that cannot say leaves the whole quota announced; it
		// still refuses what is over it.
		used, _ := agentUsage(s.cfg.Store, agent)
		left = uint64(max(0, quota-used))
	}
	tlsState := conn.ConnectionState().TLS
	key, err := wire.DeriveProbeKey(&tlsState, session)
	if err != nil {
		return nil, 0, fmt.Errorf("derive probe key: %w", err)
	}
	if err := s.probes.Register(conn, session, key); err != nil {
		return nil, 0, fmt.Errorf("register probe session: %w", err)
	}
	caps := wire.CapZstd | wire.CapDelta | wire.CapSummary | wire.CapResume
	var lc *laneConn
	if h.Caps.Has(wire.CapLane) && !s.cfg.DisableLane {
		// Start the lane before granting it, so a granted lane is there.
		router := newLaneRouter(&s.stats.laneDropped)
		ls, err := lane.NewSession(conn, s.tr, s.demux, lane.Config{Deliver: router.deliver, Abandoned: router.abandoned, Budget: mem})
		if err != nil {
			s.log.Warn("data lane not started; op data stays on streams", "agent", agent, "error", err)
		} else {
			lc = &laneConn{session: ls, router: router}
			caps |= wire.CapLane
		}
	}
	if h.Caps.Has(wire.CapOpsPerStream) && !s.cfg.DisableOpsPerStream {
		caps |= wire.CapOpsPerStream
		if h.Caps.Has(wire.CapPackedBackfill) && !s.cfg.DisablePackedBackfill {
			caps |= wire.CapPackedBackfill
		}
	}
	if h.Caps.Has(wire.CapSummariesPerStream) && !s.cfg.DisablePackedBackfill {
		caps |= wire.CapSummariesPerStream
	}
	w := &wire.Welcome{
		ProbeSession: session,
		Version:      v,
		Core:         s.cfg.Name,
		Caps:         caps,
		MaxFrame:     wire.MaxFrameSize,
		MaxOpBytes:   uint64(s.cfg.MaxOpBytes),
		QuotaLeft:    left,
	}
	// The agent stops reading the hello stream once it has the Welcome
	// (it cancels its read side): its STOP_SENDING may reach the core
	// before this write or Close. The agent's choice, not a failure.
	if err := wire.WriteFrame(str, w); err != nil && !canceledByPeer(err) {
		lc.close()
		return nil, 0, fmt.Errorf("write welcome: %w", err)
	}
	if err := str.Close(); err != nil && !canceledByPeer(context.Cause(str.Context())) {
		lc.close()
		return nil, 0, fmt.Errorf("close hello stream: %w", err)
	}
	// Nothing more is read from the hello stream: its receive side goes,
	// so that it holds no stream slot for the connection's life.
	str.CancelRead(0)
	str.ReleaseStreamCredit()
	if lc == nil {
		lc = &laneConn{}
	}
	return lc, caps, nil
}

// canceledByPeer reports whether err is the peer's STOP_SENDING or reset
// of the stream. (quic-go's Close of a stream the peer canceled returns a
// plain error; the stream's context's cause is the StreamError.)
func canceledByPeer(err error) bool {
	var se *quic.StreamError
	return errors.As(err, &se) && se.Remote
}

// tellHelloFailed answers a bad Hello with an ERROR frame. It is best
// effort: the caller closes the connection with err's code next, which the
// agent sees whether or not the frame arrives.
func tellHelloFailed(str *quic.Stream, err error) {
	_ = wire.WriteFrame(str, wire.ErrorFrameFor(err))
}

// serveDatagrams answers the agent's pings so that it can measure RTT,
// jitter and loss.
func (s *Server) serveDatagrams(conn *quic.Conn, fig *agentFigures) {
	ctx := conn.Context()
	for {
		b, err := conn.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		s.stats.pings.Add(1)
		fig.seen()
		s.probes.HandleDatagram(conn, b)
	}
}

// setReadTimeout bounds the next reads on str to d from now.
func setReadTimeout(str *quic.Stream, d time.Duration) {
	// quic-go's SetReadDeadline cannot fail; its error is there to match
	// net.Conn.
	_ = str.SetReadDeadline(time.Now().Add(d))
}

func randUint64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read does not fail
	return binary.BigEndian.Uint64(b[:])
}
