package agent

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// satBacklogOps is the size of TestBackfillPacked's backlog: about five
// round trips of the 32 small slots, each summary alone on its stream.
const satBacklogOps = 150

// satBacklog runs a backlog of satBacklogOps small normal events (1 KiB,
// each with a summary) through an always-satellite link (summaries
// first) to a core: the agent's offer of packed backfill off when
// agentOff, the core's grant off when coreOff. It checks that every op
// arrives once, byte for byte, as a summary first and then in full, and
// returns the agent's stats.
func satBacklog(t *testing.T, agentOff, coreOff bool) EndpointStats {
	t.Helper()
	p := testutil.NewPKI(t, "site-1")
	rec := &arrivals{}
	c := coretest.Start(t, p, func(sc *core.ServerConfig) {
		rec.Backend, sc.Store = sc.Store, rec
		sc.DisablePackedBackfill = coreOff
	})
	opts, _ := shaped(linksim.SatelliteGEO())
	opts.DisablePackedBackfill = agentOff
	a := newAgent(t, p, coretest.AgentConfig(t, p, c.Addr.String()), opts)
	sat, interval := edgesync.Satellite, time.Duration(0)
	if err := a.SetProfile(sat, linkmon.Override{Interval: &interval}); err != nil {
		t.Fatal(err)
	}
	if err := a.Switch("core", linkmon.Pin{Class: &sat}); err != nil {
		t.Fatal(err)
	}
	ops := make([]workloadOp, satBacklogOps)
	enq := make([]outbox.Op, len(ops))
	for i := range ops {
		ops[i] = workloadOp{key: fmt.Sprintf("sensors/%d", i), kind: edgesync.EventOp, prio: edgesync.Normal, payload: testutil.RandomBytes(uint64(i), 1<<10)}
		enq[i] = enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: ops[i].key, Priority: ops[i].prio, Kind: ops[i].kind,
			Payload: bytes.NewReader(ops[i].payload), Summary: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 2*time.Minute, "the satellite backlog to drain", func() bool { return outboxEmpty(a) })
	checkDelivered(t, c, "site-1", enq, ops)
	summaries, full := map[edgesync.OpID]int{}, map[edgesync.OpID]int{}
	for _, r := range rec.list() {
		if r.summary {
			summaries[r.id]++
		} else if summaries[r.id] == 0 {
			t.Fatalf("op %s arrived in full before its summary", r.id)
		} else {
			full[r.id]++
		}
	}
	for _, op := range enq {
		if summaries[op.ID] != 1 {
			t.Fatalf("op %s: %d summaries at the core, want 1", op.ID, summaries[op.ID])
		}
	}
	st := a.Stats()[0]
	t.Logf("%d ops: %d summaries, %d packs of %d ops, %d retries", len(enq), len(summaries), st.Packs, st.PackedOps, st.Retries)
	a.Close()
	return st
}

// TestBackfillPacked: on a satellite link with summaries first, the full
// data of a backlog of small ops (backfill) goes packed, several ops a
// stream, as ordinary small ops do (docs/backfill.md, "Order"), and every
// op arrives once, after its summary. With the agent's offer or the
// core's grant of wire.CapPackedBackfill off (an agent or a core built
// before it), each backfill op goes alone on its stream, as before.
func TestBackfillPacked(t *testing.T) {
	t.Run("packed", func(t *testing.T) {
		st := satBacklog(t, false, false)
		if st.PackedOps < satBacklogOps/2 {
			t.Errorf("%d of %d backfill ops went packed (%d packs); want at least half: each went alone on its stream", st.PackedOps, satBacklogOps, st.Packs)
		}
	})
	for _, tc := range []struct {
		name              string
		agentOff, coreOff bool
	}{{"agent offers no packed backfill", true, false}, {"core grants no packed backfill", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			if st := satBacklog(t, tc.agentOff, tc.coreOff); st.PackedOps != 0 || st.Packs != 0 {
				t.Errorf("%d packs of %d ops without the capability; want every backfill op alone on its stream", st.Packs, st.PackedOps)
			}
		})
	}
}
