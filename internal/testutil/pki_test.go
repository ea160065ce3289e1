package testutil

import (
	"crypto/tls"
	"io"
	"net"
	"testing"

	"github.com/edge-sync/edge-sync/internal/pki"
)

// handshake runs a TLS handshake over an in-memory pipe and returns the
// agent name the server verified and the client's error. In TLS 1.3 the
// client finishes before the server has checked its certificate, so the
// client reads one byte: the server's verdict.
func handshake(t *testing.T, server, client *tls.Config) (peer string, clientErr error) {
	t.Helper()
	a, b := net.Pipe()
	srv, cli := tls.Server(a, server), tls.Client(b, client)
	done := make(chan error, 1)
	go func() {
		defer a.Close() // not srv.Close: its close_notify would wait for a reader
		err := srv.Handshake()
		if err == nil {
			peer, err = pki.PeerName(srv.ConnectionState())
		}
		if err == nil {
			_, err = srv.Write([]byte{1})
		}
		done <- err
	}()
	clientErr = cli.Handshake()
	if clientErr == nil {
		_, clientErr = io.ReadFull(cli, make([]byte, 1))
	}
	b.Close()
	if serverErr := <-done; clientErr == nil && serverErr != nil {
		t.Fatalf("server: %v", serverErr)
	}
	return peer, clientErr
}

func TestPKIMutualTLS(t *testing.T) {
	p := NewPKI(t, "site-1")
	for _, name := range []string{CoreName, "127.0.0.1", "localhost"} {
		peer, err := handshake(t, p.ServerTLS(t), p.ClientTLS(t, name))
		if err != nil {
			t.Fatalf("server name %q: %v", name, err)
		}
		if peer != "site-1" {
			t.Fatalf("server name %q: the core saw agent %q, want site-1", name, peer)
		}
	}
}

// The core refuses an agent certificate of another CA, even from a client
// that trusts the core.
func TestPKIRefusesAnotherCA(t *testing.T) {
	p, other := NewPKI(t, "site-1"), NewPKI(t, "intruder")
	intruder := other.ClientTLS(t, CoreName)
	intruder.RootCAs = p.ClientTLS(t, CoreName).RootCAs
	if _, err := handshake(t, p.ServerTLS(t), intruder); err == nil {
		t.Fatal("an agent of another CA got in")
	}
	if _, err := handshake(t, p.ServerTLS(t), other.ClientTLS(t, CoreName)); err == nil {
		t.Fatal("an agent trusted a core of another CA")
	}
}
