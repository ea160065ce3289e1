package cli

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/edge-sync/edge-sync/core/admin"
)

// TestCoreServesLiveAgents: the core command's admin socket answers the
// running core's per-agent figures (GET /v1/agents/live), which an admin
// API serving a store alone does not: the command wires the server in.
func TestCoreServesLiveAgents(t *testing.T) {
	_, cfg := testCoreConfig(t)
	startTestCore(t, cfg)
	c := admin.NewClient(filepath.Join(cfg.DataDir, "core.sock"))
	defer c.Close()
	live, err := c.LiveAgents(context.Background())
	if err != nil {
		t.Fatalf("live agents from a running core: %v", err)
	}
	if live == nil || len(live) != 0 {
		t.Fatalf("live agents of a core no agent reached: %+v, want []", live)
	}
}
