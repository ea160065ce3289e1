package linksim

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// quicSink accepts one connection and reads one stream to its end,
// replying with a single byte when done.
func quicSink(t *testing.T, ctx context.Context, tlsConf *tls.Config) (addr string, done <-chan error) {
	t.Helper()
	tr := newTransport(t)
	ln, err := tr.Listen(tlsConf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan error, 1)
	go func() {
		err := func() error {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return err
			}
			st, err := conn.AcceptStream(ctx)
			if err != nil {
				return err
			}
			if _, err := io.Copy(io.Discard, st); err != nil {
				return err
			}
			if _, err := st.Write([]byte{1}); err != nil {
				return err
			}
			st.Close()
			// Wait for the client to close, so our reply is delivered.
			<-conn.Context().Done()
			return nil
		}()
		ln.Close()
		ch <- err
	}()
	return ln.Addr().String(), ch
}

// newTransport returns a quic.Transport on its own loopback socket, both
// closed at the end of the test (explicitly, so no goroutine outlives it).
func newTransport(t *testing.T) *quic.Transport {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() {
		tr.Close()
		udp.Close()
	})
	return tr
}

// sendThrough sends n bytes on one stream of the connection dial makes
// to a sink (quicSink) and waits for the reply, checks the RTT quic-go
// measured (checkRTT), closes the connection and waits for the sink; how
// names the path in messages.
func sendThrough(t *testing.T, how string, n int, want, slack time.Duration,
	dial func(ctx context.Context, sink string, tlsConf *tls.Config) (*quic.Conn, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pki := testutil.NewPKI(t, "linksim-test")
	addr, done := quicSink(t, ctx, pki.ServerTLS(t))
	conn, err := dial(ctx, addr, pki.ClientTLS(t, "127.0.0.1"))
	if err != nil {
		t.Fatalf("dial through %s: %v", how, err)
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := io.ReadFull(st, make([]byte, 1)); err != nil {
		t.Fatalf("reading the reply: %v", err)
	}
	checkRTT(t, conn.ConnectionStats(), want, slack)
	conn.CloseWithError(0, "")
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
}

func checkRTT(t *testing.T, stats quic.ConnectionStats, want, slack time.Duration) {
	t.Helper()
	t.Logf("min RTT %v, smoothed %v, latest %v, lost %d packets", stats.MinRTT, stats.SmoothedRTT, stats.LatestRTT, stats.PacketsLost)
	if stats.MinRTT < want || stats.MinRTT > want+slack {
		t.Errorf("MinRTT %v, want in [%v, %v]", stats.MinRTT, want, want+slack)
	}
	if stats.SmoothedRTT < want || stats.SmoothedRTT > want+4*slack {
		t.Errorf("SmoothedRTT %v, want in [%v, %v]", stats.SmoothedRTT, want, want+4*slack)
	}
}

// TestQUICThroughRelay runs a real QUIC transfer through the relay with
// the satellite-geo profile and checks the RTT quic-go measures.
func TestQUICThroughRelay(t *testing.T) {
	var r *Relay
	sendThrough(t, "relay", 128<<10, 600*time.Millisecond, 50*time.Millisecond, func(ctx context.Context, sink string, tlsConf *tls.Config) (*quic.Conn, error) {
		r = newTestRelay(t, sink, SatelliteGEO())
		return newTransport(t).Dial(ctx, r.Addr(), tlsConf, &quic.Config{})
	})
	st := r.Stats()
	if st.Profile != "satellite-geo" || st.Up.Packets == 0 || st.Down.Packets == 0 {
		t.Errorf("relay stats %+v: want traffic both ways under satellite-geo", st)
	}
}

// TestQUICThroughWrap uses a shaped Conn as the client's quic.Transport.
func TestQUICThroughWrap(t *testing.T) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := Profile{Name: "wrap-test",
		Up:   Direction{RateBps: 10 * mbit, Delay: 30 * time.Millisecond},
		Down: Direction{RateBps: 10 * mbit, Delay: 20 * time.Millisecond}}
	c, err := Wrap(udp, p, WithSeed(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tr := &quic.Transport{Conn: c}
	defer tr.Close()
	sendThrough(t, "Wrap", 256<<10, 50*time.Millisecond, 25*time.Millisecond, func(ctx context.Context, sink string, tlsConf *tls.Config) (*quic.Conn, error) {
		server, err := net.ResolveUDPAddr("udp", sink)
		if err != nil {
			return nil, err
		}
		return tr.Dial(ctx, server, tlsConf, &quic.Config{})
	})
	if st := c.Stats(); st.Up.Bytes < 256<<10 {
		t.Errorf("Up carried %d bytes, want at least the 256 KiB sent", st.Up.Bytes)
	}
}

// TestConnDeadlineAndClose checks the PacketConn contract parts quic-go
// relies on: read deadlines, and Close unblocking a reader.
func TestConnDeadlineAndClose(t *testing.T) {
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Wrap(udp, Profile{Name: "d", Down: Direction{Delay: 10 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadBuffer(1 << 20); err != nil {
		t.Errorf("SetReadBuffer: %v", err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	buf := make([]byte, 100)
	if _, _, err := c.ReadFrom(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ReadFrom past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	c.SetReadDeadline(time.Time{})

	// A packet sent to the Conn arrives after the Down delay.
	peer, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	sent := time.Now()
	if _, err := peer.WriteTo([]byte("hello"), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := c.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" || from.String() != peer.LocalAddr().String() {
		t.Fatalf("ReadFrom = %q from %v, %v", buf[:n], from, err)
	}
	if d := time.Since(sent); d < 10*time.Millisecond-releaseSlack {
		t.Errorf("packet arrived after %v, before the 10 ms Down delay", d)
	}
	c.SetReadDeadline(time.Time{})

	errc := make(chan error, 1)
	go func() {
		_, _, err := c.ReadFrom(buf)
		errc <- err
	}()
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("ReadFrom after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock ReadFrom")
	}
	if _, err := c.WriteTo([]byte("x"), peer.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteTo after Close: %v, want net.ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
