package agent

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestBatchIntervalIdleLink: under a class whose batch interval is an hour,
// an op of more than a chunk put on an idle link right after a batch goes
// at once (docs/design.md#batch-interval), and a small op put after it
// waits for the interval, or for the next op that fills a chunk, which it
// then goes with.
func TestBatchIntervalIdleLink(t *testing.T) {
	p, c, cfg := siteCore(t)
	a := startAgent(t, p, cfg, Options{})
	class, hour := edgesync.Mobile, time.Hour
	if err := a.SetProfile(class, linkmon.Override{Interval: &hour}); err != nil {
		t.Fatal(err)
	}
	if err := a.Switch("core", linkmon.Pin{Class: &class}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "a connection", func() bool { return a.Stats()[0].Connected })
	// The class's largest chunk: the chunk size follows the measured
	// bandwidth within the class's range.
	chunk := a.Config().Profiles[class].Params.ChunkSize
	applied := func(op outbox.Op) func() bool {
		return func() bool { ok, _ := c.Store.Applied("site-1", op.ID); return ok }
	}
	put := func(key string, size int) outbox.Op {
		b := make([]byte, size)
		_, _ = rand.Read(b)
		return enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: key, Priority: edgesync.High, Kind: edgesync.EventOp, Payload: bytes.NewReader(b)})
	}

	// Each batch drains before the next put, so that the put does not
	// join it.
	eb := &a.eps["core"].batch
	drained := func(n int64) func() bool { return func() bool { return eb.batches.Load() >= n } }

	// A first batch: after it, the interval runs.
	first := put("small-1", 1<<10)
	testutil.WaitFor(t, 20*time.Second, "the first small op (no batch within the interval yet)", applied(first))
	testutil.WaitFor(t, 20*time.Second, "the first batch to drain", drained(1))

	// A transfer of more than a chunk does not wait for the interval.
	large := put("large", 4*chunk)
	testutil.WaitFor(t, 20*time.Second, "the large op on an idle link, within the hour's batch interval", applied(large))
	testutil.WaitFor(t, 20*time.Second, "the large op's batch to drain", drained(2))

	// A small op waits: the interval since the last batch has not passed.
	small := put("small-2", 1<<10)
	testutil.WaitFor(t, 20*time.Second, "the sender to hold the small op", func() bool { return eb.holds.Load() >= 1 })
	if ok, _ := c.Store.Applied("site-1", small.ID); ok {
		t.Fatal("a small op put within the batch interval went at once; it should wait for the interval or a chunk's worth")
	}
	// The next op that fills a chunk takes it along.
	large2 := put("large-2", 2*chunk)
	testutil.WaitFor(t, 20*time.Second, "the second large op and the held small op", func() bool {
		return applied(large2)() && applied(small)()
	})
}
