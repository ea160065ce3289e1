package agent

import (
	"bytes"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestOwnFailureIsNoHotLoop: an op whose attempts fail on this agent's
// own side (ownError) the same way each time is not sent again at once,
// over and over, without a word: here an op of one maximal chunk (16 MiB,
// the fiber class's chunk) in full, whose DATA frame does not encode
// (the codec's framing takes 9 bytes beyond the wire's 16 MiB chunk).
// Before ownError such a failure parked the op, blamed on the core; since,
// it went again every 10-15 ms, silently (22 attempts in 0.8 s). It must
// wait a backoff, say so, and the op is stored in the end.
func TestOwnFailureIsNoHotLoop(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	cfg := quietConfig(coretest.AgentConfig(t, p, c.Addr.String()))
	for _, cl := range edgesync.LinkClasses() {
		cfg.Profiles[cl] = config.Profile{Mode: edgesync.SyncFull, ChunkSize: 16 << 20}
	}
	var logs testutil.Buffer
	a := startAgent(t, p, cfg, Options{Logger: teeLogger(t, "agent", &logs)})
	testutil.WaitFor(t, 30*time.Second, "a connection to the core", func() bool { return a.Stats()[0].Connected })
	payload := testutil.RandomBytes(3, 16<<20)
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "blob/maximal", Kind: edgesync.EventOp, Priority: edgesync.Normal, Payload: bytes.NewReader(payload)})
	const attempts = 5
	deadline := time.Now().Add(30 * time.Second)
	for !outboxEmpty(a) {
		st := a.Stats()[0]
		if st.Retries > attempts {
			t.Fatalf("the op was sent again %d times (parked %d): a failure of the agent's own side retried at once, in a loop", st.Retries, st.Parked)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the op not stored within 30 s: %d retries, %d parked\n%s", st.Retries, st.Parked, logs.String()[max(0, len(logs.String())-4000):])
		}
		time.Sleep(50 * time.Millisecond) // polling the outbox: no event says an attempt failed
	}
}
