package control

import (
	"bytes"
	"context"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/pki"
)

// This file starts the real parts the control tests talk to: a CA with a
// core and an agent certificate, a core on loopback, an agent.

// testPKI is a CA with a core certificate for 127.0.0.1 and one agent
// certificate, written under a test directory.
type testPKI struct {
	ca, coreCert, coreKey, agentCert, agentKey string
	agentName                                  string
}

func newTestPKI(t testing.TB, agentName string) *testPKI {
	t.Helper()
	dir := t.TempDir()
	f := func(n string) string { return filepath.Join(dir, n) }
	p := &testPKI{ca: f("ca.pem"), coreCert: f("core.pem"), coreKey: f("core-key.pem"),
		agentCert: f("agent.pem"), agentKey: f("agent-key.pem"), agentName: agentName}
	ca, err := pki.NewCA("test-ca", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.WriteCA(ca, p.ca, f("ca-key.pem"), false); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, cert, key string
		server          bool
	}{{"core", p.coreCert, p.coreKey, true}, {agentName, p.agentCert, p.agentKey, false}} {
		var hosts []string
		if c.server {
			hosts = []string{"127.0.0.1"}
		}
		is, err := ca.Issue(c.name, c.server, hosts, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := pki.WriteCert(is, c.cert, c.key, false); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// testCore is a running core on loopback.
type testCore struct {
	store *core.Store
	addr  net.Addr
}

func startCore(t testing.TB, p *testPKI) *testCore {
	t.Helper()
	store, err := core.Open(filepath.Join(t.TempDir(), "core.db"), core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := pki.ServerTLSConfig(p.ca, p.coreCert, p.coreKey)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := core.NewServer(core.ServerConfig{TLS: tlsConf, Store: store, Logger: testLogger(t, "core")})
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
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("core Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("core server did not stop within 10 s")
		}
		pc.Close()
		store.Close()
	})
	return &testCore{store: store, addr: pc.LocalAddr()}
}

// coreData reads the current version of key at the core.
func coreData(c *testCore, agentName, key string) ([]byte, error) {
	_, obj, err := c.store.Current(agentName, key)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.NewSectionReader(obj, 0, obj.Size()))
}

func testLogger(t testing.TB, name string) hclog.Logger {
	if testing.Verbose() {
		return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: testWriter{t}})
	}
	return hclog.NewNullLogger()
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// agentConfig returns a valid agent config for one endpoint "core".
func agentConfig(t testing.TB, p *testPKI, coreAddr string) config.Agent {
	cfg := config.DefaultAgent()
	cfg.Name = p.agentName
	cfg.DataDir = t.TempDir()
	cfg.TLS = config.TLS{CA: p.ca, Cert: p.agentCert, Key: p.agentKey}
	// Until a monitor classifies the link, ordinary data waits 30 s
	// between batches; tests want it at once.
	fast := 50 * time.Millisecond
	cfg.Profiles[edgesync.Unknown] = config.Profile{Interval: &fast}
	cfg.Endpoints = []config.Endpoint{{Name: "core", Address: coreAddr, ServerName: "127.0.0.1", Monitor: cfg.Monitor}}
	return cfg
}

func startAgent(t testing.TB, p *testPKI, cfg config.Agent, opts agent.Options) *agent.Agent {
	t.Helper()
	tlsConf, err := pki.ClientTLSConfig(p.ca, p.agentCert, p.agentKey, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	opts.TLS = tlsConf
	if opts.Logger == nil {
		opts.Logger = testLogger(t, "agent")
	}
	a, err := agent.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("agent Close: %v", err)
		}
	})
	return a
}

// waitFor polls cond until it holds or d passes, for figures that announce
// no event (the core's store, the agent's counters).
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}
