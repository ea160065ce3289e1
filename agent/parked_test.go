package agent

import (
	"bytes"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestParkedOpRetriedInSession: an op the core refuses for a reason that
// may pass (here its quota, which an operator then raises) is tried again
// on the same connection after a backoff, not only when the connection
// ends: a connection can live for weeks.
func TestParkedOpRetriedInSession(t *testing.T) {
	defer setParkBackoff(t, 200*time.Millisecond)()
	p := testutil.NewPKI(t, "site-1")
	c, quota := quotaCore(t, p, 64<<10)
	a := startAgent(t, p, coretest.AgentConfig(t, p, c.Addr.String()), Options{})
	data := bytes.Repeat([]byte("pump-3 "), 40<<10) // 280 KiB: over the quota
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "big", Priority: edgesync.High, Kind: edgesync.StateOp, Payload: bytes.NewReader(data)})
	testutil.WaitFor(t, 30*time.Second, "the core to refuse the op for its quota (parked)", func() bool {
		return a.Stats()[0].Parked > 0
	})
	conns := c.Server.Stats().Accepted
	quota.Store(1 << 30)
	testutil.WaitFor(t, 30*time.Second, "the parked op to be sent again on the same connection once the quota allows it", func() bool {
		return outboxEmpty(a)
	})
	got, err := c.Data("site-1", "big")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("core holds %d bytes (%v), want the %d put", len(got), err, len(data))
	}
	if n := c.Server.Stats().Accepted; n != conns {
		t.Errorf("the agent connected %d times more; the retry should not need a new connection", n-conns)
	}
}

// quotaCore starts a core whose store gives site-1 a quota of first
// bytes, which the test may change through quota; c.Store is that store.
func quotaCore(t *testing.T, p *testutil.PKI, first int64) (c *coretest.Core, quota *atomic.Int64) {
	t.Helper()
	quota = new(atomic.Int64)
	quota.Store(first)
	var store *core.Store
	c = coretest.Start(t, p, func(sc *core.ServerConfig) {
		var err error
		store, err = core.Open(filepath.Join(t.TempDir(), "quota.db"), core.Config{AgentQuota: func(string) int64 { return quota.Load() }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		sc.Store = store
	})
	c.Store = store // the store with the quota, in place of coretest's
	return c, quota
}

// setParkBackoff sets the first backoff for a test; the returned function
// restores it.
func setParkBackoff(t testing.TB, d time.Duration) func() {
	t.Helper()
	old := firstParkBackoff
	firstParkBackoff = d
	return func() { firstParkBackoff = old }
}
