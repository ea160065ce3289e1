package core

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/hashicorp/go-hclog"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestAgentRefusedStreamsNoHotLoop: a real agent meets a core whose frame
// memory is spent (streams of other connections hold it), so that the
// core refuses each of the agent's op streams at accept (streamRefuser):
// up to maxDrainingRefusals read and answered ERROR busy, the rest
// cancelled at once. Busy is the core's trouble: the agent must hold its
// ops for its backoff (agent/corefull.go, 0.5 s doubling), not open
// their streams again at once while the core's memory stays spent.
func TestAgentRefusedStreamsNoHotLoop(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	a := newTestAgent(t, ts.pki, t.TempDir(), ts.addr)
	spent := int(ts.srv.cfg.MaxFrameMemory) - 16
	if err := ts.srv.mem.Reserve(spent); err != nil {
		t.Fatal(err)
	}
	defer ts.srv.mem.Release(spent)

	// Small ops and ops of one large chunk, many at once.
	const ops = 64
	for i := range ops {
		size := 200
		if i%2 == 1 {
			size = 120 << 10
		}
		payload := make([]byte, size)
		_, _ = rand.NewChaCha8([32]byte{byte(i)}).Read(payload) // incompressible
		if _, err := a.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("ev/%d", i),
			Kind: edgesync.EventOp, Priority: edgesync.Normal, Payload: bytes.NewReader(payload)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	r0, st0 := ts.srv.Stats().FrameMemoryRefused, a.Stats()[0]
	const window = 2 * time.Second
	time.Sleep(window) // the behaviour measured is a rate over time
	r1, st1 := ts.srv.Stats().FrameMemoryRefused, a.Stats()[0]
	refused := r1 - r0
	t.Logf("in %v: %d streams refused at the core; agent: %d busy nacks, %d retries",
		window, refused, st1.Nacks["busy"]-st0.Nacks["busy"], st1.Retries-st0.Retries)
	// With the backoff (0.5 s, 1 s, ...) the agent tries a few times in
	// 2 s, each trial one op; a generous bound is one batch of ops each
	// backoff.
	if limit := int64(4 * ops); refused > limit {
		t.Errorf("the core refused %d op streams of the agent in %v while its memory stayed spent (agent: %d retries at once, %d busy nacks): "+
			"a hot loop; want at most %d (the agent holds its ops for a backoff on busy)",
			refused, window, st1.Retries-st0.Retries, st1.Nacks["busy"]-st0.Nacks["busy"], limit)
	}
}

// newTestAgent is startTestAgent without its Start: ops enqueued before
// it go at once when it starts. It is closed with the test.
func newTestAgent(t *testing.T, p *testutil.PKI, dataDir, coreAddr string) *agent.Agent {
	t.Helper()
	cfg := config.DefaultAgent()
	cfg.Name = p.AgentName
	cfg.DataDir = dataDir
	cfg.TLS = config.TLS{CA: p.CAFile, Cert: p.AgentCert, Key: p.AgentKey}
	cfg.Control.Socket = "off"
	cfg.Endpoints = []config.Endpoint{{Name: "core", Address: coreAddr, ServerName: "127.0.0.1", Monitor: cfg.Monitor}}
	a, err := agent.New(cfg, agent.Options{Logger: hclog.NewNullLogger(), TLS: p.ClientTLS(t, "127.0.0.1")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("agent Close: %v", err)
		}
	})
	return a
}
