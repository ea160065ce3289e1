package testutil

import (
	"crypto/tls"
	"io"
	"testing"

	"github.com/edge-sync/edge-sync/internal/pki"
)

// handshake runs a TLS handshake on loopback with the two configs and
// returns the name the server verified and the client's error.
func handshake(t *testing.T, server, client *tls.Config) (peer string, clientErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		name string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		name, err := pki.PeerName(tc.ConnectionState())
		_, _ = tc.Write([]byte{1}) // lets the client finish reading the handshake
		done <- result{name, err}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err == nil {
		_, err = io.ReadFull(c, make([]byte, 1))
		c.Close()
	}
	r := <-done
	if err == nil && r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	return r.name, err
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

func TestPKIRefusesAnotherCA(t *testing.T) {
	p, other := NewPKI(t, "site-1"), NewPKI(t, "intruder")
	if _, err := handshake(t, p.ServerTLS(t), other.ClientTLS(t, CoreName)); err == nil {
		t.Fatal("an agent of another CA got in")
	}
}
