package wire

import (
	"bytes"
	"context"
	"errors"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"pgregory.net/rapid"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

var testProbeKey = ProbeKey{Session: 0x0123456789abcdef, Secret: [32]byte{1, 2, 3, 4, 5, 6, 7, 8}}

func TestProbePacketRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := genProbeFrame().Draw(t, "frame")
		p, err := SealProbe(testProbeKey, f)
		if err != nil {
			t.Fatalf("seal %s: %v", f.Type(), err)
		}
		if p[0]&0xc0 != 0 {
			t.Fatalf("first byte %#x has a top bit set: quic-go would take it for a QUIC packet", p[0])
		}
		if len(p) > MaxProbePacketSize {
			t.Fatalf("%d-byte probe packet, limit %d", len(p), MaxProbePacketSize)
		}
		if s, err := ProbeSessionOf(p); err != nil || s != testProbeKey.Session {
			t.Fatalf("ProbeSessionOf = %#x, %v", s, err)
		}
		got, err := OpenProbe(testProbeKey, p)
		if err != nil {
			t.Fatalf("open %s: %v", f.Type(), err)
		}
		if !reflect.DeepEqual(got, f) {
			t.Fatalf("probe round trip:\n got %#v\nwant %#v", got, f)
		}
		// Any single changed byte is refused, never parsed.
		i := rapid.IntRange(0, len(p)-1).Draw(t, "flip at")
		bad := bytes.Clone(p)
		bad[i] ^= 1 << rapid.IntRange(0, 7).Draw(t, "bit")
		if _, err := OpenProbe(testProbeKey, bad); !errors.Is(err, ErrProbeAuth) {
			t.Fatalf("flipped byte %d: err = %v, want ErrProbeAuth", i, err)
		}
		// Every truncation too.
		cut := rapid.IntRange(0, len(p)-1).Draw(t, "cut")
		if _, err := OpenProbe(testProbeKey, p[:cut]); !errors.Is(err, ErrProbeAuth) {
			t.Fatalf("cut to %d: err = %v, want ErrProbeAuth", cut, err)
		}
	})
}

func TestProbePacketRefusals(t *testing.T) {
	p, err := SealProbe(testProbeKey, &Ping{Seq: 1})
	if err != nil {
		t.Fatal(err)
	}
	other := testProbeKey
	other.Secret[0] ^= 1
	if _, err := OpenProbe(other, p); !errors.Is(err, ErrProbeAuth) {
		t.Fatalf("wrong secret: %v, want ErrProbeAuth", err)
	}
	other = testProbeKey
	other.Session++
	if _, err := OpenProbe(other, p); !errors.Is(err, ErrProbeAuth) {
		t.Fatalf("wrong session: %v, want ErrProbeAuth", err)
	}
	if _, err := SealProbe(testProbeKey, &Ack{IDs: make([]edgesync.OpID, 1)}); !errors.Is(err, ErrNotProbe) {
		t.Fatalf("sealing an Ack: %v, want ErrNotProbe", err)
	}
	if _, err := OpenProbe(testProbeKey, make([]byte, MaxProbePacketSize+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("oversize packet: %v, want ErrFrameTooLarge", err)
	}
	// A maximal padded train still fits one packet on a 1280-byte path.
	train := &ProbeTrain{TrainID: 1, Count: 1}
	if err := train.PadTo(MaxProbeFrameSize); err != nil {
		t.Fatal(err)
	}
	p, err = SealProbe(testProbeKey, train)
	if err != nil || len(p) > 1280-48 {
		t.Fatalf("maximal probe packet: %d bytes, %v", len(p), err)
	}
}

// TestProbeOverRealQUICTransport derives the probe key on both ends of a
// real QUIC connection on loopback and sends a sealed train packet from the
// agent's quic.Transport to the core's, outside QUIC, on the same sockets.
func TestProbeOverRealQUICTransport(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lp := newLoopbackPair(ctx, t, nil)
	coreTr, agentTr, agentConn := lp.coreTr, lp.agentTr, lp.agent
	a := struct{ conn *quic.Conn }{lp.core}

	const session = 42
	agentKey, err := DeriveProbeKey(ptr(agentConn.ConnectionState().TLS), session)
	if err != nil {
		t.Fatalf("agent key: %v", err)
	}
	coreKey, err := DeriveProbeKey(ptr(a.conn.ConnectionState().TLS), session)
	if err != nil {
		t.Fatalf("core key: %v", err)
	}
	if agentKey != coreKey || agentKey.Secret == ([32]byte{}) {
		t.Fatal("agent and core derived different (or zero) probe keys")
	}
	if k2, _ := DeriveProbeKey(ptr(agentConn.ConnectionState().TLS), session+1); k2.Secret == agentKey.Secret {
		t.Fatal("two sessions share a probe key")
	}

	want := &ProbeTrain{TrainID: 7, Index: 0, Count: 1, Sent: 123 * time.Millisecond}
	if err := want.PadTo(1000); err != nil {
		t.Fatal(err)
	}
	pkt, err := SealProbe(agentKey, want)
	if err != nil {
		t.Fatal(err)
	}
	// UDP on loopback may still drop; resend until the core reads one.
	got := make(chan Frame, 1)
	readErr := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := coreTr.ReadNonQUICPacket(ctx, buf)
			if err != nil {
				readErr <- err
				return
			}
			if s, err := ProbeSessionOf(buf[:n]); err != nil || s != session {
				continue
			}
			f, err := OpenProbe(coreKey, buf[:n])
			if err != nil {
				readErr <- err
				return
			}
			got <- f
			return
		}
	}()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := agentTr.WriteTo(pkt, coreTr.Conn.LocalAddr()); err != nil {
			t.Fatalf("write raw probe: %v", err)
		}
		select {
		case f := <-got:
			if !reflect.DeepEqual(f, want) {
				t.Fatalf("core read %#v, want %#v", f, want)
			}
			return
		case err := <-readErr:
			t.Fatalf("core reading probe: %v", err)
		case <-ctx.Done():
			t.Fatal("no probe packet arrived within 10 s")
		case <-tick.C:
		}
	}
}

func ptr[T any](v T) *T { return &v }

// loopbackPair is a real QUIC connection between two transports on
// 127.0.0.1, closed by t.Cleanup.
type loopbackPair struct {
	coreTr, agentTr *quic.Transport
	core, agent     *quic.Conn
}

func newLoopbackPair(ctx context.Context, t *testing.T, conf *quic.Config) *loopbackPair {
	t.Helper()
	pki := testutil.NewPKI(t, "site-1")
	serverTLS, clientTLS := pki.ServerTLS(t), pki.ClientTLS(t, "localhost")
	listen := func() *quic.Transport {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		tr := &quic.Transport{Conn: c}
		t.Cleanup(func() { tr.Close(); c.Close() })
		return tr
	}
	p := &loopbackPair{coreTr: listen(), agentTr: listen()}
	ln, err := p.coreTr.Listen(serverTLS, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	type accepted struct {
		conn *quic.Conn
		err  error
	}
	acc := make(chan accepted, 1)
	go func() { c, err := ln.Accept(ctx); acc <- accepted{c, err} }()
	p.agent, err = p.agentTr.Dial(ctx, p.coreTr.Conn.LocalAddr(), clientTLS, conf)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { p.agent.CloseWithError(0, "") })
	a := <-acc
	if a.err != nil {
		t.Fatalf("accept: %v", a.err)
	}
	p.core = a.conn
	t.Cleanup(func() { p.core.CloseWithError(0, "") })
	if got := p.agent.ConnectionState().TLS.NegotiatedProtocol; got != ALPN {
		t.Fatalf("negotiated ALPN %q, want %q", got, ALPN)
	}
	return p
}
