package control

import (
	"context"
	"testing"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// This file starts the real parts the control tests talk to: a core on
// loopback and an agent, with the certificates of a testutil.PKI.

func startAgent(t testing.TB, p *testutil.PKI, cfg config.Agent, opts agent.Options) *agent.Agent {
	t.Helper()
	opts.TLS = p.ClientTLS(t, "127.0.0.1")
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t, "agent")
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
