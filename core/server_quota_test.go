package core

import (
	"fmt"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// TestAbandonedOpsReserveNoQuota abandons 15 headers of 1 GiB ops, one of
// them with its first chunk sent: while they are received their declared
// size counts against the agent's quota, but once the connection is gone
// (or the op has been idle for the frame timeout) only the bytes that came
// may: the partials stay for a resume, the reservation of bytes that
// never came does not.
func TestAbandonedOpsReserveNoQuota(t *testing.T) {
	const ops, opSize, chunk = 15, 1 << 30, 1 << 20
	for _, tc := range []struct {
		name      string
		timeout   time.Duration
		closeConn bool
	}{
		{"connection closed", 2 * time.Minute, true},
		// Long enough for the first op's 1 MiB chunk to arrive whole on a
		// loaded machine under -race (at 1 s it timed out before), short
		// enough for the 10 s poll below.
		{"idle timeout", 3 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Config{Quota: 20 << 30, MaxObjectSize: opSize},
				func(c *ServerConfig) { c.MaxOpBytes = opSize; c.FrameTimeout = tc.timeout })
			c := ts.dial(t, 0)
			first := hostile.OpID(0, 0)
			for i := range ops {
				str := openStream(t, c)
				id := hostile.OpID(0, i)
				if err := hostile.Write(str, hostile.OpHeader(id, fmt.Sprintf("big/%d", i), opSize, chunk)); err != nil {
					t.Fatal(err)
				}
				if f, err := hostile.Read(str, 10*time.Second); err != nil || f.Type() != wire.FrameResumeAnswer {
					t.Fatalf("op %d: answer %v, %v; want RESUME_ANSWER", i, f, err)
				}
				if i == 0 {
					if err := hostile.Write(str, fullChunkSized(t, id, make([]byte, chunk), chunk, opSize)); err != nil {
						t.Fatal(err)
					}
				}
			}
			testutil.WaitFor(t, 10*time.Second, "the first chunk stored", func() bool {
				n, _ := ts.store.PartialSize("site-1", first)
				return n == chunk
			})
			if r := agentStats(t, ts.store, "site-1").Reserved; tc.closeConn && r != ops*opSize {
				t.Fatalf("while the ops are received %d bytes are reserved, want %d", r, ops*opSize)
			}
			if tc.closeConn {
				c.Close()
			}
			if !testutil.Poll(10*time.Second, func() bool { return agentStats(t, ts.store, "site-1").Reserved == chunk }) {
				t.Fatalf("10 s after the ops were abandoned %d bytes are reserved, want the %d that came",
					agentStats(t, ts.store, "site-1").Reserved, chunk)
			}
			if n, ok := ts.store.PartialSize("site-1", first); !ok || n != chunk {
				t.Fatalf("the abandoned op holds %d bytes (%v) for a resume, want %d", n, ok, chunk)
			}
		})
	}
}

// TestServerSweepsIdlePartials leaves a partial op idle past the store's
// PartialMaxAge: the running server's periodic sweep discards it (and the
// bytes it holds stop counting against the quota) without a restart.
func TestServerSweepsIdlePartials(t *testing.T) {
	clock := testutil.NewClock()
	ts := startServer(t, Config{PartialMaxAge: time.Hour, Now: clock.Now}, func(c *ServerConfig) { c.SweepInterval = 20 * time.Millisecond })
	id := hostile.OpID(0, 7)
	if _, _, err := ts.store.BeginPartial("site-1", PartialHeader{OpID: id, Key: "idle", Kind: edgesync.EventOp, Size: 10}); err != nil {
		t.Fatal(err)
	}
	if err := ts.store.WritePartial("site-1", id, 0, []byte("held")); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * time.Hour)
	testutil.WaitFor(t, 10*time.Second, "the idle partial swept", func() bool {
		_, ok := ts.store.PartialSize("site-1", id)
		return !ok
	})
	if r := agentStats(t, ts.store, "site-1").Reserved; r != 0 {
		t.Fatalf("%d bytes reserved after the sweep", r)
	}
}
