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
	// Ops of one chunk, small and large (the agent closes its side once
	// it has written them); and ops of several chunks first, whose
	// refused streams the agent leaves open after their header (so the
	// core reads them to the frame timeout, holding its 4 slots), then
	// ops of one chunk larger than QUIC sends in a round trip, so that
	// the core's STOP_SENDING can fail the agent's write.
	t.Run("one-chunk", func(t *testing.T) {
		agentRefusedStreams(t, 0, func(i int) int { return []int{200, 120 << 10}[i%2] })
	})
	t.Run("several-chunks-first", func(t *testing.T) {
		agentRefusedStreams(t, 64<<10, func(i int) int {
			if i < 8 {
				return 1 << 20
			}
			return 60 << 10
		})
	})
}

func agentRefusedStreams(t *testing.T, chunk int64, size func(int) int) {
	ts := startServer(t, Config{}, nil)
	a := newTestAgent(t, ts.pki, t.TempDir(), ts.addr, chunk)
	spent := int(ts.srv.cfg.MaxFrameMemory) - 16
	if err := ts.srv.mem.Reserve(spent); err != nil {
		t.Fatal(err)
	}
	defer ts.srv.mem.Release(spent)

	// Small ops and ops of one large chunk, many at once.
	const ops = 64
	for i := range ops {
		payload := make([]byte, size(i))
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
	// Each attempt of an op ends in one of these (agent/sender.go, settle).
	attempts := st1.Retries - st0.Retries + st1.Parked - st0.Parked + st1.Paused - st0.Paused
	t.Logf("in %v: %d reservations refused at the core (streams and lane packets); agent: %d attempts, %d busy nacks, %d retries, %d parked, %d paused",
		window, refused, attempts, st1.Nacks["busy"]-st0.Nacks["busy"], st1.Retries-st0.Retries, st1.Parked-st0.Parked, st1.Paused-st0.Paused)
	// With the backoff (0.5 s, 1 s, ...) the agent tries a few times in
	// 2 s, each trial one op; a generous bound is one batch of ops each
	// backoff.
	if limit := int64(2 * ops); attempts > limit {
		t.Errorf("in %v while the core's memory stayed spent the agent made %d attempts (%d busy nacks) and the core refused %d reservations: "+
			"a hot loop; want at most %d attempts (the agent holds its ops for a backoff on busy)",
			window, attempts, st1.Nacks["busy"]-st0.Nacks["busy"], refused, limit)
	}
}

// newTestAgent is startTestAgent without its Start: ops enqueued before
// it go at once when it starts. It is closed with the test. chunk, if
// not 0, is the chunk size of every link class's profile.
func newTestAgent(t *testing.T, p *testutil.PKI, dataDir, coreAddr string, chunk int64) *agent.Agent {
	t.Helper()
	cfg := testAgentConfig(p, dataDir, coreAddr)
	if chunk != 0 {
		if cfg.Profiles == nil {
			cfg.Profiles = map[edgesync.LinkClass]config.Profile{}
		}
		for _, class := range edgesync.LinkClasses() {
			prof := cfg.Profiles[class]
			prof.ChunkSize = chunk
			cfg.Profiles[class] = prof
		}
	}
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
