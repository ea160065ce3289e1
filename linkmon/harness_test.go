package linkmon

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/wire"
)

// testCore is a minimal core: a QUIC listener whose connections get a
// probe session on the Responder, a datagram loop per connection and the
// one ReadNonQUICPacket loop of its transport.
type testCore struct {
	tr       *quic.Transport
	ln       *quic.Listener
	resp     *Responder
	client   *tls.Config
	sessions chan uint64
	next     atomic.Uint64
	// onDatagram, when set before dialling, sees every datagram first
	// with its arrival time; returning true consumes it.
	onDatagram func(b []byte, at time.Time) bool
	// trainPackets counts the probe packets (the trains') that arrived.
	trainPackets atomic.Int64
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

func newTestCore(t testing.TB) *testCore {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := testutil.NewPKI(t, "site-1")
	srv, cli := p.ServerTLS(t), p.ClientTLS(t, testutil.CoreName)
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(srv, wire.QUICConfig(16))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &testCore{tr: tr, ln: ln, resp: NewResponder(nil), client: cli, sessions: make(chan uint64, 8), cancel: cancel}
	c.next.Store(0x5e55_0000)
	c.wg.Add(2)
	go c.accept(ctx)
	go c.readRaw(ctx)
	t.Cleanup(func() {
		cancel()
		_ = ln.Close()
		_ = tr.Close()
		c.wg.Wait()
		c.resp.Close()
	})
	return c
}

func (c *testCore) accept(ctx context.Context) {
	defer c.wg.Done()
	for {
		conn, err := c.ln.Accept(ctx)
		if err != nil {
			return
		}
		session := c.next.Add(1)
		key, err := ProbeKeyFor(conn, session)
		if err == nil {
			err = c.resp.Register(conn, session, key)
		}
		if err != nil {
			conn.CloseWithError(1, err.Error())
			continue
		}
		c.sessions <- session
		c.wg.Add(2)
		go c.serveStreams(ctx, conn)
		go func() {
			defer c.wg.Done()
			defer c.resp.Unregister(session)
			for {
				b, err := conn.ReceiveDatagram(ctx)
				if err != nil {
					conn.CloseWithError(0, "")
					return
				}
				if c.onDatagram != nil && c.onDatagram(b, time.Now()) {
					continue
				}
				c.resp.HandleDatagram(conn, b)
			}
		}()
	}
}

// serveStreams answers each stream the agent opens with its running
// count of bytes received (8 bytes, big-endian) after every read: the
// acknowledgements a bulk sender reports into a DeliveryMeter.
func (c *testCore) serveStreams(ctx context.Context, conn *quic.Conn) {
	defer c.wg.Done()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		st, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		wg.Go(func() {
			defer st.CancelRead(0)
			defer st.CancelWrite(0)
			buf := make([]byte, 64<<10)
			var total uint64
			for {
				n, err := st.Read(buf)
				total += uint64(n)
				if n > 0 {
					if _, werr := st.Write(binary.BigEndian.AppendUint64(nil, total)); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		})
	}
}

func (c *testCore) readRaw(ctx context.Context) {
	defer c.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, from, err := c.tr.ReadNonQUICPacket(ctx, buf)
		if err != nil {
			return
		}
		if n > 0 && buf[0] == wire.ProbeMagic {
			c.trainPackets.Add(1)
			c.resp.HandleRawPacket(buf[:n], from)
		}
	}
}

// uplink returns p with its directions swapped, so that the agent's
// uplink (writes through linksim.Wrap) carries the profile's headline
// (downstream) figures: the direction the profile is named for.
func uplink(p linksim.Profile) linksim.Profile {
	p = p.Clone()
	p.Up, p.Down = p.Down, p.Up
	return p
}

// testAgent is an agent's connection to a testCore through a shaped link.
type testAgent struct {
	link    *linksim.Conn
	tr      *quic.Transport
	conn    *quic.Conn
	session uint64
}

func dialTestAgent(t testing.TB, core *testCore, p linksim.Profile, seed uint64) *testAgent {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	lc, err := linksim.Wrap(udp, uplink(p), linksim.WithSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: lc}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := tr.Dial(ctx, core.tr.Conn.LocalAddr(), core.client, wire.QUICConfig(16))
	if err != nil {
		t.Fatalf("dial through %s: %v", p.Name, err)
	}
	var session uint64
	select {
	case session = <-core.sessions:
	case <-ctx.Done():
		t.Fatal("core registered no probe session within 20s")
	}
	a := &testAgent{link: lc, tr: tr, conn: conn, session: session}
	t.Cleanup(func() {
		conn.CloseWithError(0, "")
		_ = tr.Close()
		_ = lc.Close()
	})
	return a
}

// setProfile switches the agent's link (uplink-swapped like dial).
func (a *testAgent) setProfile(t testing.TB, p linksim.Profile) {
	t.Helper()
	if err := a.link.SetProfile(uplink(p)); err != nil {
		t.Fatal(err)
	}
}

// testConfig is the default monitor configuration.
func testConfig() Config { return Default() }

func startMonitor(t testing.TB, cfg Config, a *testAgent, opts MonitorOptions) *Monitor {
	t.Helper()
	m, err := NewMonitor(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	attachAndStart(t, m, a)
	return m
}

// startWatched is startMonitor with the monitor's events subscribed to
// before it attaches and starts, so that none is missed.
func startWatched(t testing.TB, cfg Config, a *testAgent, opts MonitorOptions) (*Monitor, <-chan Event) {
	t.Helper()
	m, err := NewMonitor(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	events, cancel := m.Subscribe()
	t.Cleanup(cancel)
	attachAndStart(t, m, a)
	return m, events
}

// startThenAttach starts a monitor with no connection, subscribes to its
// events and then attaches it to a's connection: the order of an agent
// whose monitor runs before its first connection is up. Both the monitor
// and the subscription end with t.
func startThenAttach(t testing.TB, cfg Config, a *testAgent, opts MonitorOptions) (*Monitor, <-chan Event) {
	t.Helper()
	m := startMonitor(t, cfg, nil, opts)
	events, cancel := m.Subscribe()
	t.Cleanup(cancel)
	if err := m.Attach(a.conn, a.tr, a.session); err != nil {
		t.Fatal(err)
	}
	return m, events
}

// attachAndStart attaches m to a's connection (when a is not nil) and
// starts it; m closes when t ends.
func attachAndStart(t testing.TB, m *Monitor, a *testAgent) {
	t.Helper()
	if a != nil {
		if err := m.Attach(a.conn, a.tr, a.session); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
}

// waitClass waits up to limit for an event to a class for which ok holds
// and returns the event and the time it took.
func waitClass(t testing.TB, events <-chan Event, limit time.Duration, ok func(edgesync.LinkClass) bool) (Event, time.Duration, bool) {
	t.Helper()
	start := time.Now()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case ev, open := <-events:
			if !open {
				return Event{}, time.Since(start), false
			}
			if ev.Kind == LinkClassChanged && ok(ev.Change.New) {
				return ev, time.Since(start), true
			}
		case <-timer.C:
			return Event{}, time.Since(start), false
		}
	}
}

func is(c edgesync.LinkClass) func(edgesync.LinkClass) bool {
	return func(x edgesync.LinkClass) bool { return x == c }
}

func isNot(c edgesync.LinkClass) func(edgesync.LinkClass) bool {
	return func(x edgesync.LinkClass) bool { return x != c && x != edgesync.Unknown }
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
