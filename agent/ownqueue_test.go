package agent

import (
	"bytes"
	"slices"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// ownQueueLink is issue #14's 50 Mbit/s, 40 ms, 1 % link, with a buffer
// deep enough (100 ms) for the agent's own data to queue in.
func ownQueueLink() linksim.Profile {
	d := linksim.Direction{RateBps: 50_000_000, Delay: 20 * time.Millisecond, LossRate: 0.01, QueueDelay: 100 * time.Millisecond}
	return linksim.Profile{Name: "50M-40ms-1pct", Summary: "issue #14's broadband link", Up: d, Down: d}
}

// Issue #14: a 50 Mbit/s, 40 ms, 1 % link showed as mobile under a bulk
// transfer (by the thresholds, 10-100 Mbit/s under 50 ms is broadband).
// The agent's own data queues at the bottleneck and the RTT the class was
// judged on rose past 50 ms. The class must judge the path, not the queue
// its own sender builds: broadband while the transfer runs.
func TestOwnQueueKeepsBroadband(t *testing.T) {
	if testing.Short() {
		t.Skip("a bulk transfer of 10-20 s on a shaped link")
	}
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	opts, link := shaped(ownQueueLink())
	a := startAgent(t, p, coretest.AgentConfig(t, p, c.Addr.String()), opts)
	testutil.WaitFor(t, 30*time.Second, "the idle link classed broadband", func() bool {
		st, err := a.Status("core")
		return err == nil && link() != nil && st.Measured == edgesync.Broadband
	})

	op := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "bulk", Priority: edgesync.High, Kind: edgesync.EventOp,
		Payload: bytes.NewReader(randomish(48 << 20))})
	testutil.WaitFor(t, 30*time.Second, "the bulk transfer under way", func() bool {
		n, ok := c.Store.PartialSize("site-1", op.ID)
		return ok && n > 1<<20
	})
	// Watch the class while the transfer fills the link (up to 20 s).
	var classes []edgesync.LinkClass
	var rtts []time.Duration
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for range 80 {
		<-tick.C
		if n, ok := c.Store.PartialSize("site-1", op.ID); !ok || n > 46<<20 {
			break // done, or nearly: the link is no longer full
		}
		st, err := a.Status("core")
		if err != nil {
			t.Fatal(err)
		}
		classes = append(classes, st.Measured)
		rtts = append(rtts, st.Figures.RTT)
	}
	mobile := 0
	for _, cl := range classes {
		if cl != edgesync.Broadband {
			mobile++
		}
	}
	slices.Sort(rtts)
	t.Logf("%d samples under load: %d not broadband; RTT shown p50 %v, max %v", len(classes), mobile, rtts[len(rtts)/2], rtts[len(rtts)-1])
	if len(classes) < 8 {
		t.Fatalf("only %d samples while the link was full", len(classes))
	}
	if mobile > 0 {
		t.Fatalf("%d of %d samples under the agent's own load not broadband on a 50 Mbit/s, 40 ms link (RTT shown p50 %v, max %v)",
			mobile, len(classes), rtts[len(rtts)/2], rtts[len(rtts)-1])
	}
}
