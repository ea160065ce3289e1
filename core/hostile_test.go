package core

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// testServer is a core server on loopback with a real store, for tests
// that talk to it over real QUIC (with the hostile client).
type testServer struct {
	srv   *Server
	store *Store
	addr  string
	pki   *testutil.PKI
	logs  *testutil.Buffer
}

// startServer starts a server on a fresh store, with a PKI of its own
// whose agent is "site-1"; mod may change its config.
func startServer(t testing.TB, storeCfg Config, mod func(*ServerConfig)) *testServer {
	t.Helper()
	return startServerWith(t, testutil.NewPKI(t, "site-1"), storeCfg, mod)
}

// startServerWith is startServer with the PKI p.
func startServerWith(t testing.TB, p *testutil.PKI, storeCfg Config, mod func(*ServerConfig)) *testServer {
	t.Helper()
	store, _ := openTest(t, storeCfg)
	logs := &testutil.Buffer{}
	cfg := ServerConfig{Name: "core", TLS: p.ServerTLS(t), Store: store,
		Logger: hclog.New(&hclog.LoggerOptions{Name: "core", Level: hclog.Debug, Output: logs})}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), pc) }()
	t.Cleanup(func() {
		srv.Close()
		if err := testutil.Returned(t, done, 10*time.Second, "the core server to stop"); err != nil {
			t.Errorf("serve: %v", err)
		}
		pc.Close()
	})
	return &testServer{srv: srv, store: store, addr: srv.Addr().String(), pki: p, logs: logs}
}

// dial connects a hostile client that offers caps; it is closed with the
// test.
func (ts *testServer) dial(t *testing.T, caps wire.Capabilities) *hostile.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := hostile.Dial(ctx, ts.addr, ts.pki.ClientTLS(t, "127.0.0.1"), caps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// openStream opens an op stream on c within 10 s.
func openStream(t *testing.T, c *hostile.Client) *quic.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	str, err := c.Open(ctx)
	if err != nil {
		t.Fatalf("open stream: %v", err)
	}
	return str
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
