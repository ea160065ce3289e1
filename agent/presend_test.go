package agent

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// presendAgent starts a core and an agent on a broadband link, pinned to
// broadband with no batch interval, connected with a data lane.
func presendAgent(t *testing.T) (*Agent, *coretest.Core, *laneLink) {
	t.Helper()
	c, a, _ := shapedAgent(t, linksim.Broadband())
	pinFast(t, a, edgesync.Broadband, 0)
	testutil.WaitFor(t, 30*time.Second, "a connection with a data lane", func() bool { return a.eps["core"].lane.Load() != nil })
	return a, c, a.eps["core"].lane.Load()
}

// broadbandChunkMax is the largest chunk the broadband class sends (the
// adjuster moves it between 1 and 4 MiB with what it measures): a presend
// needs an op of more than one chunk, whatever the adjuster chose. The
// tests' ops of 4 MiB got none when a loaded machine kept the chunk at
// 4 MiB (TestPresendAdopted: "0 presends adopted (0 abandoned)" under
// -race beside two busy loops).
const broadbandChunkMax = 4 << 20

func incompressible(n int, seed uint64) []byte {
	b := make([]byte, n)
	rnd := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	return b
}

// TestPresendAdopted puts a large op on a connected agent: its first
// chunks go on the lane while the outbox writes it, the attempt adopts
// them, and the core stores the op once, byte-identical, dropping nothing.
func TestPresendAdopted(t *testing.T) {
	a, c, ln := presendAgent(t)
	payload := incompressible(broadbandChunkMax+2<<20, 1)
	op := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "big", Priority: edgesync.High, Payload: bytes.NewReader(payload)})
	testutil.WaitFor(t, time.Minute, "the op at the core", func() bool { return outboxEmpty(a) })
	checkDelivered(t, c, "site-1", []outbox.Op{op}, []workloadOp{{key: "big", kind: edgesync.EventOp, payload: payload}})
	st := c.Server.Stats()
	if n := ln.preAdopted.Load(); n != 1 {
		t.Fatalf("%d presends adopted (%d abandoned), want 1", n, ln.preAbandoned.Load())
	}
	if st.OpsApplied != 1 || st.OpsDuplicate != 0 || st.LaneOps != 1 || st.LaneDropped != 0 {
		t.Fatalf("core applied %d ops, %d duplicates, %d via the lane, dropped %d lane bytes; want 1, 0, 1, 0",
			st.OpsApplied, st.OpsDuplicate, st.LaneOps, st.LaneDropped)
	}
}

// failingPayload declares size bytes (Len, as an upload with a
// Content-Length does) and gives the first n of data, then err (io.EOF:
// the producer declared more than it gave).
type failingPayload struct {
	r    *bytes.Reader
	size int
	err  error
}

func (p *failingPayload) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err == io.EOF {
		err = p.err
	}
	return n, err
}

func (p *failingPayload) Len() int { return p.size }

// TestPresendAbandonedOnFailedPut fails a put after its first 5 MiB have
// fed a presend: the put is refused, the core stores nothing and drops
// the lane data at once (not after the 10 s it holds data for an op
// whose header has not come), and the next op goes through.
func TestPresendAbandonedOnFailedPut(t *testing.T) {
	a, c, ln := presendAgent(t)
	errProducer := errors.New("producer went away")
	bad := &failingPayload{r: bytes.NewReader(incompressible(broadbandChunkMax+1<<20, 2)), size: 2 * broadbandChunkMax, err: errProducer}
	if _, err := a.Enqueue(t.Context(), outbox.NewOp{Endpoint: "core", Key: "bad", Priority: edgesync.High, Payload: bad}); !errors.Is(err, errProducer) {
		t.Fatalf("enqueue of a failing payload: %v, want %v", err, errProducer)
	}
	if n := ln.preAbandoned.Load(); n != 1 {
		t.Fatalf("%d presends abandoned, want 1", n)
	}
	// Generous, but below the core's 10 s wait for a header.
	testutil.WaitFor(t, 5*time.Second, "the core to drop the abandoned lane data", func() bool { return c.Server.Stats().LaneDropped > 0 })
	payload := incompressible(2<<20, 3)
	op := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "good", Priority: edgesync.High, Payload: bytes.NewReader(payload)})
	testutil.WaitFor(t, time.Minute, "the next op at the core", func() bool { return outboxEmpty(a) })
	checkDelivered(t, c, "site-1", []outbox.Op{op}, []workloadOp{{key: "good", kind: edgesync.EventOp, payload: payload}})
	if st := c.Server.Stats(); st.OpsApplied != 1 {
		t.Fatalf("core applied %d ops, want 1 (the failed put must not reach it)", st.OpsApplied)
	}
}

// TestPresendWrongLength puts an op whose producer declares more bytes
// than it gives: the outbox stores what it gave, the presend (encoded for
// the declared size) is not adopted, and the op reaches the core intact.
func TestPresendWrongLength(t *testing.T) {
	a, c, ln := presendAgent(t)
	payload := incompressible(broadbandChunkMax+1<<20+1, 4)
	short := &failingPayload{r: bytes.NewReader(payload), size: 2 * broadbandChunkMax, err: io.EOF}
	op := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "short", Priority: edgesync.High, Payload: short})
	if op.Size != int64(len(payload)) {
		t.Fatalf("outbox stored %d bytes, producer gave %d", op.Size, len(payload))
	}
	testutil.WaitFor(t, time.Minute, "the op at the core", func() bool { return outboxEmpty(a) })
	checkDelivered(t, c, "site-1", []outbox.Op{op}, []workloadOp{{key: "short", kind: edgesync.EventOp, payload: payload}})
	if ad, ab := ln.preAdopted.Load(), ln.preAbandoned.Load(); ad != 0 || ab != 1 {
		t.Fatalf("%d presends adopted, %d abandoned; want 0, 1", ad, ab)
	}
}

// TestEncodingWarmedWhileIdle: an agent whose link compresses with zstd
// encodes a chunk of noise in that encoding while the link is idle, before
// any op (presend_warm.go), so that a later large op's presend finds a
// zstd encoder in the codec's pool and encodes no noise of its own, which
// took CPU from the outbox's read of the op's first chunk.
func TestEncodingWarmedWhileIdle(t *testing.T) {
	warmedEncodings.Clear() // as in a fresh process
	a, _, _ := presendAgent(t)
	e := a.eps["core"]
	testutil.WaitFor(t, 30*time.Second, "the link's encoding warmed", func() bool {
		p, _, _ := e.params()
		h, ok := zstdHeader(p)
		if !ok {
			return false
		}
		_, done := warmedEncodings.Load(warmKeyOf(&h))
		return done
	})
}
