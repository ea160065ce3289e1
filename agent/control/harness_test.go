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
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// This file starts the real parts the control tests talk to: a core on
// loopback and an agent, with the certificates of a testutil.PKI.

// testCore is a running core on loopback.
type testCore struct {
	store *core.Store
	addr  net.Addr
}

func startCore(t testing.TB, p *testutil.PKI) *testCore {
	t.Helper()
	store, err := core.Open(filepath.Join(t.TempDir(), "core.db"), core.Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := core.NewServer(core.ServerConfig{TLS: p.ServerTLS(t), Store: store, Logger: testLogger(t, "core")})
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
func agentConfig(t testing.TB, p *testutil.PKI, coreAddr string) config.Agent {
	cfg := config.DefaultAgent()
	cfg.Name = p.AgentName
	cfg.DataDir = t.TempDir()
	cfg.TLS = config.TLS{CA: p.CAFile, Cert: p.AgentCert, Key: p.AgentKey}
	// Until a monitor classifies the link, ordinary data waits 30 s
	// between batches; tests want it at once.
	fast := 50 * time.Millisecond
	cfg.Profiles[edgesync.Unknown] = config.Profile{Interval: &fast}
	cfg.Endpoints = []config.Endpoint{{Name: "core", Address: coreAddr, ServerName: "127.0.0.1", Monitor: cfg.Monitor}}
	return cfg
}

func startAgent(t testing.TB, p *testutil.PKI, cfg config.Agent, opts agent.Options) *agent.Agent {
	t.Helper()
	opts.TLS = p.ClientTLS(t, "127.0.0.1")
	if opts.Logger == nil {
		opts.Logger = testLogger(t, "agent")
	}
	a, err := agent.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("agent Close: %v", err)
		}
	})
	return a
}
