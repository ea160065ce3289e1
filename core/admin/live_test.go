package admin

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/agenttest"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestLiveAgents: a real core and agent; the admin API of the running
// core answers each agent's figures (connected, last seen, ops and bytes
// received), as /metrics does, and shows the agent gone once it stops.
// An admin API serving a store alone answers 404.
func TestLiveAgents(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	socket := filepath.Join(testutil.ShortTempDir(t), "core.sock")
	srv, err := NewServer(socket, c.Store, nil, WithLiveAgents(c.Server))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background()) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := testutil.Returned(t, served, 10*time.Second, "Serve to return after Close"); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	cl := NewClient(socket)
	defer cl.Close()
	ctx := context.Background()
	live := func() core.AgentFigures {
		t.Helper()
		all, err := cl.LiveAgents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range all {
			if f.Agent == "site-1" {
				return f
			}
		}
		return core.AgentFigures{}
	}

	start := time.Now()
	a := agenttest.Start(t, p, coretest.AgentConfig(t, p, c.Addr.String()), agent.Options{})
	const n = 3
	var sent int64
	for i := range n {
		payload := fmt.Sprintf("pressure %d bar", i)
		sent += int64(len(payload))
		if _, err := a.Enqueue(ctx, outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("sensors/p%d", i), Priority: edgesync.High, Payload: strings.NewReader(payload)}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 20*time.Second, "the core to acknowledge 3 ops of site-1", func() bool { return live().Ops >= n })
	f := live()
	if f.Connections != 1 || f.Ops != n || f.Bytes != sent || f.LastSeen.Before(start) || f.LastOp.Before(start) {
		t.Fatalf("live figures of site-1 after %d ops of %d bytes: %+v", n, sent, f)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 15*time.Second, "site-1 shown disconnected", func() bool { return live().Connections == 0 })
	if f := live(); f.Ops != n {
		t.Errorf("ops received after the agent left: %d, want %d kept", f.Ops, n)
	}

	// The same API on a store alone has no live figures.
	fx := newFixture(t)
	fx.serve(t)
	sc := NewClient(fx.socket)
	defer sc.Close()
	if _, err := sc.LiveAgents(ctx); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("live figures from a store-only admin API: want core.ErrNotFound, got %v", err)
	}
}
