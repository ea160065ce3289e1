package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestLifecycle: an agent closes twice without error, started or not, and
// refuses to start once closed (docs/architecture.md#lifecycle); goleak
// (main_test.go) finds any goroutine a Close left behind.
func TestLifecycle(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	newAgent := func(t *testing.T) *Agent {
		a, err := New(coretest.AgentConfig(t, p, c.Addr.String()), Options{TLS: p.ClientTLS(t, "127.0.0.1"), Logger: testutil.Logger(t, "agent")})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	start := func(a *Agent) func() error { return func() error { return a.Start(t.Context()) } }
	t.Run("never started", func(t *testing.T) {
		a := newAgent(t)
		ended, cancel := context.WithCancel(t.Context())
		cancel()
		if err := a.Start(ended); !errors.Is(err, context.Canceled) {
			t.Fatalf("Start with an ended context: want context.Canceled, got %v", err)
		}
		testutil.CheckClose(t, a.Close, start(a), ErrClosed)
	})
	t.Run("connected", func(t *testing.T) {
		a := newAgent(t)
		if err := a.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, "the agent to connect", func() bool { return c.Server.Stats().Connections == 1 })
		testutil.CheckClose(t, a.Close, start(a), ErrClosed)
	})
}
