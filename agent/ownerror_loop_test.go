package agent

import (
	"bytes"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestOwnFailureIsNoHotLoop: an op whose attempts fail on this agent's
// own side (ownError) the same way each time is not sent again at once,
// over and over, without a word: here an op of one maximal chunk (16 MiB,
// the fiber class's chunk) in full, whose DATA frame does not encode
// (the codec's framing takes 9 bytes beyond the wire's 16 MiB chunk):
// the agent's chunks keep room for the framing (maxPlainChunk,
// TestMaximalChunkArrives); the test lifts that to make the failure.
// Before ownError such a failure parked the op, blamed on the core; since,
// it went again every 10-15 ms, silently (22 attempts in 0.8 s). It must
// wait a backoff and say so.
func TestOwnFailureIsNoHotLoop(t *testing.T) {
	setFor(t, &maxPlainChunk, codec.MaxChunkSize)
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	cfg := quietConfig(coretest.AgentConfig(t, p, c.Addr.String()))
	var logs testutil.Buffer
	a := startAgent(t, p, cfg, Options{Logger: teeLogger(t, "agent", &logs), DisableLane: true})
	pinChunks(t, a, 16<<20)
	testutil.WaitFor(t, 30*time.Second, "a connection to the core", func() bool { return a.Stats()[0].Connected })
	payload := testutil.RandomBytes(3, 16<<20)
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "blob/maximal", Kind: edgesync.EventOp, Priority: edgesync.Normal, Payload: bytes.NewReader(payload)})
	// Polled: no event says an attempt failed. Before the fix the op went
	// again every 10-15 ms; parked, it waits 10 s.
	testutil.WaitFor(t, 30*time.Second, "the op's first attempt settled", func() bool {
		st := a.Stats()[0]
		return st.Retries+st.Parked > 0 || outboxEmpty(a)
	})
	end := time.Now().Add(3 * time.Second)
	for time.Now().Before(end) {
		if st := a.Stats()[0]; st.Retries > 2 {
			t.Fatalf("the op was sent again %d times within 3 s (parked %d): a failure of the agent's own side retried at once, in a loop", st.Retries, st.Parked)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if outboxEmpty(a) {
		t.Fatal("the op of an unencodable DATA frame was stored: the test made no failure of the agent's own")
	}
	if line := grepLines(logs.String(), "could not send an op"); !strings.Contains(line, "[ERROR]") || !strings.Contains(line, "field too long") {
		t.Errorf("the agent's own failure not logged as an ERROR that names it:\n%s", grepLines(logs.String(), "[ERROR]"))
	}
}
