package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type files struct{ ca, core, coreKey, agent, agentKey string }

// issueAll writes a CA, a core certificate for 127.0.0.1 and "core", and an
// agent certificate named agent into dir.
func issueAll(t *testing.T, dir, agent string) files {
	t.Helper()
	ca, err := NewCA("test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f := files{
		ca:       filepath.Join(dir, "ca.pem"),
		core:     filepath.Join(dir, "core.pem"),
		coreKey:  filepath.Join(dir, "core-key.pem"),
		agent:    filepath.Join(dir, "agent.pem"),
		agentKey: filepath.Join(dir, "agent-key.pem"),
	}
	if err := WriteCA(ca, f.ca, filepath.Join(dir, "ca-key.pem"), false); err != nil {
		t.Fatal(err)
	}
	core, err := ca.Issue("core", true, []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteCert(core, f.core, f.coreKey, false); err != nil {
		t.Fatal(err)
	}
	ag, err := ca.Issue(agent, false, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteCert(ag, f.agent, f.agentKey, false); err != nil {
		t.Fatal(err)
	}
	return f
}

// handshake runs a TLS server on loopback TCP with server's files and
// dials it with client's, expecting the core's certificate to name
// serverName. It returns the name the server saw and the server's and
// client's handshake errors.
func handshake(t *testing.T, server, client files, serverName string) (string, error, error) {
	t.Helper()
	scfg, err := ServerTLSConfig(server.ca, server.core, server.coreKey)
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := ClientTLSConfig(client.ca, client.agent, client.agentKey, serverName)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", scfg)
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
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			done <- result{err: err}
			return
		}
		if p := tc.ConnectionState().NegotiatedProtocol; p != ALPN {
			done <- result{err: errors.New("server negotiated ALPN " + p)}
			return
		}
		name, err := PeerName(tc.ConnectionState())
		if err == nil {
			_, err = tc.Write([]byte("ok"))
		}
		done <- result{name, err}
	}()
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, cerr := tls.DialWithDialer(d, "tcp", ln.Addr().String(), ccfg)
	if cerr == nil {
		// In TLS 1.3 the client finishes before the server has checked the
		// client certificate; reading surfaces the server's verdict.
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 2)
		_, cerr = io.ReadFull(conn, buf)
		conn.Close()
	}
	select {
	case r := <-done:
		return r.name, r.err, cerr
	case <-time.After(20 * time.Second):
		t.Fatal("server handshake did not finish within 20 s")
		return "", nil, nil
	}
}

func TestMutualTLSHandshake(t *testing.T) {
	f := issueAll(t, t.TempDir(), "site-1")
	name, serr, cerr := handshake(t, f, f, "127.0.0.1")
	if serr != nil || cerr != nil {
		t.Fatalf("handshake with issued certs: server %v, client %v", serr, cerr)
	}
	if name != "site-1" {
		t.Fatalf("PeerName = %q, want site-1", name)
	}
}

// TestOtherCARefused: each side trusts the right CA but is shown a
// certificate from another CA; it refuses it, and the side that presented
// it sees the handshake fail too.
func TestOtherCARefused(t *testing.T) {
	good := issueAll(t, t.TempDir(), "site-1")
	intruder := issueAll(t, t.TempDir(), "intruder")
	intruder.ca = good.ca
	for _, tc := range []struct {
		name           string
		server, client files
	}{
		{"agent certificate", good, intruder},
		{"core certificate", intruder, good},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, serr, cerr := handshake(t, tc.server, tc.client, "127.0.0.1")
			if serr == nil || cerr == nil {
				t.Fatalf("%s from another CA: server %v, client %v; want both to fail", tc.name, serr, cerr)
			}
		})
	}
}

func TestWrongServerNameRefused(t *testing.T) {
	f := issueAll(t, t.TempDir(), "site-1")
	if _, _, cerr := handshake(t, f, f, "not-the-core.example"); cerr == nil {
		t.Fatal("client accepted a core certificate for another name")
	}
}

func TestKeyFileModes(t *testing.T) {
	dir := t.TempDir()
	f := issueAll(t, dir, "site-1")
	for _, k := range []string{f.coreKey, f.agentKey, filepath.Join(dir, "ca-key.pem")} {
		st, err := os.Stat(k)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", k, st.Mode().Perm())
		}
	}
	st, err := os.Stat(f.core)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("%s mode %v, want 0644", f.core, st.Mode().Perm())
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".*tmp*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestWriteRefusesOverwrite(t *testing.T) {
	dir := t.TempDir()
	f := issueAll(t, dir, "site-1")
	before, _ := os.ReadFile(f.agentKey)
	ca, err := ReadCA(f.ca, filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue("site-1", false, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteCert(c, f.agent, f.agentKey, false); !errors.Is(err, ErrExists) {
		t.Fatalf("WriteCert over existing files: %v, want ErrExists", err)
	}
	after, _ := os.ReadFile(f.agentKey)
	if string(before) != string(after) {
		t.Fatal("refused write changed the key file")
	}
	if err := WriteCert(c, f.agent, f.agentKey, true); err != nil {
		t.Fatalf("forced write: %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ServerTLSConfig(junk, junk, junk); !errors.Is(err, ErrBadPEM) {
		t.Errorf("ServerTLSConfig(junk CA) = %v, want ErrBadPEM", err)
	}
	if _, err := ReadKeyFile(junk); !errors.Is(err, ErrBadPEM) {
		t.Errorf("ReadKeyFile(junk) = %v, want ErrBadPEM", err)
	}
	if _, err := ClientTLSConfig(filepath.Join(dir, "missing.pem"), junk, junk, "x"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ClientTLSConfig(missing CA) = %v, want not-exist", err)
	}
	f := issueAll(t, dir, "a")
	if _, err := ReadCA(f.agent, f.agentKey); !errors.Is(err, ErrNotCA) {
		t.Errorf("ReadCA(leaf) = %v, want ErrNotCA", err)
	}
	if _, err := ReadCA(f.ca, f.agentKey); err == nil {
		t.Error("ReadCA with a mismatched key succeeded")
	}
}

func TestPeerNameWithoutCert(t *testing.T) {
	if _, err := PeerName(tls.ConnectionState{}); !errors.Is(err, ErrNoPeerCert) {
		t.Fatalf("PeerName(empty) = %v, want ErrNoPeerCert", err)
	}
}

func TestPeerNameFallsBackToDNSName(t *testing.T) {
	cs := tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{DNSNames: []string{"site-9.example"}}}}}
	if name, err := PeerName(cs); err != nil || name != "site-9.example" {
		t.Fatalf("PeerName = %q, %v; want the DNS name", name, err)
	}
	cs = tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{{}}}}
	if _, err := PeerName(cs); !errors.Is(err, ErrNoName) {
		t.Fatalf("PeerName(no names) = %v, want ErrNoName", err)
	}
}
