package agent

import (
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestPackedBacklogFillsLink: a backlog of 2,000 small ops put before
// Start, on the LTE-like link (10 Mbit/s up, 60 ms RTT) whose figures the
// link monitor knows from a previous run, drains within twice the time
// of the same bytes put as one op, in the same test. Packs fill the link
// as a large op does: the packed bytes in flight cover the link's
// bandwidth-delay product (packbudget.go). Bounded by what the link
// carries in 5 ms, 32 KiB at least, the backlog moved about a budget
// per round trip, some 5 times slower than the one op.
func TestPackedBacklogFillsLink(t *testing.T) {
	if testing.Short() {
		t.Skip("2 MB through a 10 Mbit/s link, twice")
	}
	dc := drainCases()[0]
	dc.ops = 2000
	payloads := make([][]byte, dc.ops)
	for i := range payloads {
		payloads[i] = testutil.RandomBytes(uint64(i), 1<<10)
	}
	p := testutil.NewPKI(t, "site-1")
	one := packedDrain(t, p, dc, payloads, true).took
	took := packedDrain(t, p, dc, payloads, false).took
	linkTime := time.Duration(float64(dc.ops<<10*8) / float64(dc.prof.Up.RateBps) * float64(time.Second))
	t.Logf("%d ops of 1 KiB drained in %v, the same bytes as one op in %v; the link carries them in %v", dc.ops, took, one, linkTime)
	if took > 2*one {
		t.Errorf("a backlog of %d small ops took %v to drain through %s, %.1f times the same bytes as one op (%v); want at most 2 times",
			dc.ops, took.Round(time.Millisecond), dc.prof.Name, took.Seconds()/one.Seconds(), one.Round(time.Millisecond))
	}
}
