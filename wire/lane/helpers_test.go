package lane

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	tlsOnce           sync.Once
	serverTLS, cliTLS *tls.Config
)

// tlsConfigs returns a mutual-TLS pair signed by a throwaway CA, made once
// per test binary.
func tlsConfigs(tb testing.TB) (*tls.Config, *tls.Config) {
	tb.Helper()
	tlsOnce.Do(func() {
		p := testutil.NewPKI(tb, "agent-1")
		serverTLS, cliTLS = p.ServerTLS(tb), p.ClientTLS(tb, testutil.CoreName)
	})
	if serverTLS == nil || cliTLS == nil {
		tb.Fatal("test certificates: making them failed in an earlier test")
	}
	return serverTLS.Clone(), cliTLS.Clone()
}

// testLink is a symmetric link for tests and benchmarks: rate, RTT and
// random loss each way, linksim's default 100 ms drop-tail queue.
type testLink struct {
	name    string
	rateBps int64
	rtt     time.Duration
	loss    float64
}

func (l testLink) profile() linksim.Profile {
	d := linksim.Direction{RateBps: l.rateBps, Delay: l.rtt / 2, LossRate: l.loss}
	return linksim.Profile{Name: l.name, Up: d, Down: d}
}

// peer is one end: its transport, connection and demux.
type peer struct {
	tr    *quic.Transport
	conn  *quic.Conn
	demux *Demux
}

// pair is a QUIC connection between a client and a server on loopback,
// through a linksim relay.
type pair struct {
	client, server peer
	relay          *linksim.Relay
	serverUDP      *net.UDPConn
	shared         *serverSide
}

// serverSide is a QUIC listener behind a linksim relay; several clients
// may share it (and so share one shaped link).
type serverSide struct {
	tr    *quic.Transport
	demux *Demux
	ln    *quic.Listener
	udp   *net.UDPConn
	relay *linksim.Relay
	once  sync.Once
}

func (s *serverSide) close() {
	s.once.Do(func() {
		s.demux.Close()
		s.ln.Close()
		s.tr.Close()
		s.udp.Close()
		s.relay.Close()
	})
}

func testQUICConfig(qconf *quic.Config) *quic.Config {
	if qconf == nil {
		qconf = &quic.Config{}
	}
	// Lane packets do not reset QUIC's idle timer: keep the connection
	// alive as wire.QUICConfig does.
	qconf = qconf.Clone()
	qconf.KeepAlivePeriod = 5 * time.Second
	return qconf
}

func newServerSide(tb testing.TB, prof linksim.Profile, qconf *quic.Config) *serverSide {
	tb.Helper()
	srvTLS, _ := tlsConfigs(tb)
	sudp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	s := &serverSide{udp: sudp, tr: &quic.Transport{Conn: WrapConn(sudp)}}
	s.ln, err = s.tr.Listen(srvTLS, testQUICConfig(qconf))
	if err != nil {
		tb.Fatal(err)
	}
	s.demux = NewDemux(s.tr)
	s.relay, err = linksim.NewRelay(linksim.RelayConfig{Target: sudp.LocalAddr().String(), Profile: prof, Seed: 42})
	if err != nil {
		tb.Fatalf("linksim relay: %v", err)
	}
	tb.Cleanup(s.close)
	return s
}

// newPair dials a mutual-TLS QUIC connection through a linksim relay
// shaped by prof (Up is client→server).
func newPair(tb testing.TB, prof linksim.Profile, qconf *quic.Config) *pair {
	tb.Helper()
	return newPairs(tb, prof, qconf, 1)[0]
}

// newPairs dials n connections through one relay to one listener.
func newPairs(tb testing.TB, prof linksim.Profile, qconf *quic.Config, n int) []*pair {
	tb.Helper()
	s := newServerSide(tb, prof, qconf)
	_, cTLS := tlsConfigs(tb)
	ps := make([]*pair, n)
	for i := range ps {
		cudp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			tb.Fatal(err)
		}
		p := &pair{relay: s.relay, serverUDP: s.udp, shared: s}
		p.server.tr, p.server.demux = s.tr, s.demux
		p.client.tr = &quic.Transport{Conn: WrapConn(cudp)}
		// The demux starts before the handshake so no lane packet is missed.
		p.client.demux = NewDemux(p.client.tr)
		tb.Cleanup(p.close)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		accepted := make(chan *quic.Conn, 1)
		go func() {
			c, err := s.ln.Accept(ctx)
			if err == nil {
				accepted <- c
			}
			close(accepted)
		}()
		p.client.conn, err = p.client.tr.Dial(ctx, s.relay.Addr(), cTLS, testQUICConfig(qconf))
		if err != nil {
			cancel()
			tb.Fatalf("dial through relay: %v", err)
		}
		var ok bool
		if p.server.conn, ok = <-accepted; !ok {
			cancel()
			tb.Fatal("server accepted no connection")
		}
		p.helloExchange(tb, ctx)
		cancel()
		ps[i] = p
	}
	return ps
}

// helloExchange sends one byte each way on a stream, as the agent's
// Hello/Welcome would before a lane starts; afterwards both ends' QUIC RTT
// estimates hold real samples.
func (p *pair) helloExchange(tb testing.TB, ctx context.Context) {
	tb.Helper()
	s, err := p.client.conn.OpenStreamSync(ctx)
	if err != nil {
		tb.Fatalf("hello: %v", err)
	}
	if _, err := s.Write([]byte{1}); err != nil {
		tb.Fatalf("hello: %v", err)
	}
	ss, err := p.server.conn.AcceptStream(ctx)
	if err != nil {
		tb.Fatalf("hello accept: %v", err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(ss, b); err != nil {
		tb.Fatalf("hello read: %v", err)
	}
	if _, err := ss.Write(b); err != nil {
		tb.Fatalf("welcome: %v", err)
	}
	if _, err := io.ReadFull(s, b); err != nil {
		tb.Fatalf("welcome read: %v", err)
	}
	s.Close()
	ss.Close()
}

func (p *pair) close() {
	if p.client.conn != nil {
		p.client.conn.CloseWithError(0, "")
	}
	if p.server.conn != nil {
		p.server.conn.CloseWithError(0, "")
	}
	p.client.demux.Close()
	p.client.tr.Close()
	p.client.tr.Conn.Close()
	p.shared.close()
}

// sessions starts a lane session on each end; cfgs are client then server.
func (p *pair) sessions(tb testing.TB, ccfg, scfg Config) (*Session, *Session) {
	tb.Helper()
	ccfg.Client, scfg.Client = true, false
	cs, err := NewSession(p.client.conn, p.client.tr, p.client.demux, ccfg)
	if err != nil {
		tb.Fatalf("client session: %v", err)
	}
	ss, err := NewSession(p.server.conn, p.server.tr, p.server.demux, scfg)
	if err != nil {
		cs.Close()
		tb.Fatalf("server session: %v", err)
	}
	tb.Cleanup(func() { cs.Close(); ss.Close() })
	return cs, ss
}

// collector is a Deliver that reassembles ops and checks order per op.
type collector struct {
	mu      sync.Mutex
	ops     map[[16]byte][]byte
	base    map[[16]byte]int64
	bad     []string
	bytes   int64
	changed chan struct{}
}

func newCollector() *collector {
	return &collector{ops: map[[16]byte][]byte{}, base: map[[16]byte]int64{}, changed: make(chan struct{}, 1)}
}

func (c *collector) deliver(id [16]byte, off int64, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, seen := c.ops[id]
	if !seen {
		c.base[id] = off
	}
	if want := c.base[id] + int64(len(b)); off != want {
		c.bad = append(c.bad, "out of order")
	}
	c.ops[id] = append(b, data...)
	c.bytes += int64(len(data))
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

func (c *collector) get(id [16]byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ops[id]
}

func (c *collector) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}
