// Package agenttest starts a real agent for the tests of the packages
// above agent (agent/control, core, internal/statuspage): agent.New and
// Start with the certificates of a testutil.PKI, closed when the test
// ends.
//
// # Caveats
//
// It imports agent, so agent's own tests cannot use it; they start their
// agents with the same steps in agent/harness_test.go.
package agenttest

import (
	"context"
	"testing"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// Start starts an agent with cfg and opts, p's client certificate (for a
// core named 127.0.0.1) and, unless opts has one, a logger into the test
// log. The test's cleanup closes it, and a failed Close fails the test.
func Start(tb testing.TB, p *testutil.PKI, cfg config.Agent, opts agent.Options) *agent.Agent {
	tb.Helper()
	opts.TLS = p.ClientTLS(tb, "127.0.0.1")
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(tb, "agent")
	}
	a, err := agent.New(cfg, opts)
	if err != nil {
		tb.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := a.Close(); err != nil {
			tb.Errorf("agent Close: %v", err)
		}
	})
	return a
}
