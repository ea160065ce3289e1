package core

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// TestServerLifecycle: the server closes twice without error, served or
// not, and refuses to serve once closed; Close returns once Serve has
// stopped, every agent's connection closed (docs/architecture.md#lifecycle).
func TestServerLifecycle(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	store, err := Open(filepath.Join(t.TempDir(), "core.db"), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	newServer := func(t *testing.T) (*Server, func() error) {
		srv, err := NewServer(ServerConfig{TLS: p.ServerTLS(t), Store: store})
		if err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		return srv, func() error { return srv.Serve(context.Background(), pc) }
	}
	t.Run("never served", func(t *testing.T) {
		srv, serve := newServer(t)
		testutil.CheckClose(t, srv.Close, serve, net.ErrClosed)
	})
	t.Run("serving", func(t *testing.T) {
		srv, serve := newServer(t)
		done := make(chan error, 1)
		go func() { done <- serve() }()
		// An agent that connects and says nothing: its connection waits
		// for a Hello when the server closes.
		tlsConf := p.ClientTLS(t, "127.0.0.1")
		tlsConf.NextProtos = []string{wire.ALPN}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, srv.Addr().String(), tlsConf, wire.QUICConfig(4))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseWithError(0, "")
		testutil.WaitFor(t, 10*time.Second, "the server to admit the agent", func() bool { return srv.Stats().Connections == 1 })
		if err := testutil.Within(t, "a second Serve", serve); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("a second Serve: want net.ErrClosed, got %v", err)
		}
		testutil.CheckClose(t, srv.Close, serve, net.ErrClosed)
		if n := srv.Stats().Connections; n != 0 {
			t.Fatalf("Close returned with %d connections still served", n)
		}
		select {
		case <-conn.Context().Done():
		case <-ctx.Done():
			t.Fatal("the agent's connection is still open 10 s after the server closed")
		}
		if err := testutil.Within(t, "Serve", func() error { return <-done }); err != nil {
			t.Fatalf("Serve: %v", err)
		}
	})
}
