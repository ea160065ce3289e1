package coretest

import (
	"errors"
	"testing"

	"go.uber.org/goleak"

	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStartAndAgentConfig: the core listens on loopback with an empty
// store, and the agent config that reaches it is valid as it is.
func TestStartAndAgentConfig(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c := Start(t, p, nil)
	if !c.Addr.IP.IsLoopback() || c.Server.Addr().String() != c.Addr.String() {
		t.Fatalf("core listens on %v, server says %v; want one loopback address", c.Addr, c.Server.Addr())
	}
	if _, err := c.Data("site-1", "nothing"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Data of a key never sent: want core.ErrNotFound, got %v", err)
	}
	cfg := AgentConfig(t, p, c.Addr.String())
	if err := cfg.Validate(); err != nil {
		t.Fatalf("AgentConfig is not valid: %v", err)
	}
	if cfg.Name != p.AgentName || len(cfg.Endpoints) != 1 || cfg.Endpoints[0].Address != c.Addr.String() {
		t.Fatalf("AgentConfig: name %q, endpoints %+v; want %q with one endpoint at %s", cfg.Name, cfg.Endpoints, p.AgentName, c.Addr)
	}
}
