package agent

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

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

// An agent closed while it dials a core that does not answer logged
// WARN "cannot reach the core; retrying with backoff ... context
// canceled" (found from a fresh clone): its own shutdown is not a failure
// to reach the core, so it must not warn.
func TestCloseWhileDiallingDoesNotWarn(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	// A UDP socket that reads the agent's QUIC Initial and never answers:
	// the dial stays in progress (its timeout is 20 s) until Close.
	hole, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	got := make(chan struct{})
	go func() {
		buf := make([]byte, 2048)
		if _, _, err := hole.ReadFrom(buf); err == nil {
			close(got)
		}
	}()

	var logs testutil.Buffer
	a := startAgent(t, p, coretest.AgentConfig(t, p, hole.LocalAddr().String()),
		Options{Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Debug})})
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the agent sent no packet to the core's address within 10 s")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "[WARN]") || strings.Contains(line, "[ERROR]") {
			t.Errorf("closing the agent while it dials logged: %s", line)
		}
	}
}
