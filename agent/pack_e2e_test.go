package agent

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// These tests send backlogs of small ops (put before the agent connects,
// as after an outage) to a real core that grants CapOpsPerStream, or not:
// docs/design.md, "Packing small ops".

// smallBacklog makes n small ops (100 B to 600 B) of priority prio:
// events, and versions of eight state keys.
func smallBacklog(seed uint64, n int, prio edgesync.Priority, tag string) []workloadOp {
	ops := make([]workloadOp, n)
	for i := range ops {
		ops[i] = workloadOp{key: fmt.Sprintf("ev/%s/%d", tag, i), kind: edgesync.EventOp, prio: prio,
			payload: testutil.RandomBytes(seed+uint64(i), 100+int(seed+uint64(i)*37)%500)}
		if i%5 == 4 {
			ops[i].key, ops[i].kind = fmt.Sprintf("state/%s/%d", tag, i%8), edgesync.StateOp
		}
	}
	return ops
}

// startWithBacklog makes an agent with cfg and opts, puts ops in its
// outbox before it starts, and starts it: the ops wait together for the
// first connection.
func startWithBacklog(t *testing.T, p *testutil.PKI, cfg config.Agent, opts Options, ops []workloadOp) (*Agent, []outbox.Op) {
	t.Helper()
	a := newAgent(t, p, cfg, opts)
	enq := make([]outbox.Op, len(ops))
	for i, op := range ops {
		enq[i] = enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: op.key, Priority: op.prio, Kind: op.kind, Payload: bytes.NewReader(op.payload)})
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return a, enq
}

// quietConfig is cfg without the link monitor's probes, so that a link
// counts only the sender's packets.
func quietConfig(cfg config.Agent) config.Agent {
	cfg.Endpoints[0].Monitor.Active = false
	return cfg
}

// TestPackedBacklog: a backlog of 400 small ops arrives exactly once and
// byte for byte, on far fewer streams and packets than with one op per
// stream (the same backlog with the agent's offer off, and with the
// core's grant off, in the same test).
func TestPackedBacklog(t *testing.T) {
	ops := smallBacklog(1, 400, edgesync.Normal, "n")
	sent := sentOps(ops)
	type result struct {
		packets       uint64
		packs, packed int64
	}
	run := func(t *testing.T, agentOff, coreOff bool) result {
		p := testutil.NewPKI(t, "site-1")
		c := coretest.Start(t, p, func(sc *core.ServerConfig) { sc.DisableOpsPerStream = coreOff })
		opts, link := shaped(linksim.Unshaped())
		opts.DisableOpsPerStream = agentOff
		a, enq := startWithBacklog(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), opts, ops)
		testutil.WaitFor(t, time.Minute, "the backlog to drain", func() bool { return outboxEmpty(a) })
		checkDelivered(t, c, "site-1", enq, ops)
		st, ls := a.Stats()[0], link().Stats()
		if n := ackedOps(st); n != sent || st.Retries != 0 {
			t.Errorf("%d ops acked with %d retries; want %d (the events and each key's newest version) and none", n, st.Retries, sent)
		}
		fams := scrape(t, a.MetricsHandler())
		mustValue(t, fams, "edge_sync_packs_total", map[string]string{"endpoint": "core"}, float64(st.Packs))
		mustValue(t, fams, "edge_sync_packed_ops_total", map[string]string{"endpoint": "core"}, float64(st.PackedOps))
		t.Logf("%d ops on %d streams (%d packs of %d ops); %d packets up, %d down",
			sent, sent-st.PackedOps+st.Packs, st.Packs, st.PackedOps, ls.Up.Packets, ls.Down.Packets)
		return result{packets: ls.Up.Packets + ls.Down.Packets, packs: st.Packs, packed: st.PackedOps}
	}
	var on, agentOff, coreOff result
	t.Run("packed", func(t *testing.T) { on = run(t, false, false) })
	t.Run("agent offers no packing", func(t *testing.T) { agentOff = run(t, true, false) })
	t.Run("core grants no packing", func(t *testing.T) { coreOff = run(t, false, true) })
	if t.Failed() {
		return
	}
	if agentOff.packs != 0 || coreOff.packs != 0 {
		t.Fatalf("packs without the capability: %d with the agent's offer off, %d with the core's grant off", agentOff.packs, coreOff.packs)
	}
	if on.packs < (on.packed+wire.MaxOpsPerStream-1)/wire.MaxOpsPerStream {
		t.Errorf("%d packs carried %d ops: more than %d a pack", on.packs, on.packed, wire.MaxOpsPerStream)
	}
	if streams := sent - on.packed + on.packs; streams > sent/8 {
		t.Errorf("%d ops went on %d streams; want at most %d (packs of up to 64)", sent, streams, sent/8)
	}
	for _, base := range []result{agentOff, coreOff} {
		if float64(on.packets) > 0.7*float64(base.packets) {
			t.Errorf("packed, the backlog took %d packets both ways; one op per stream %d: want at most 0.7 of it", on.packets, base.packets)
		}
	}
}

// ackedOps sums the ops the core acknowledged over every priority.
func ackedOps(st EndpointStats) int64 {
	var n int64
	for _, ps := range st.Priorities {
		n += ps.Acked
	}
	return n
}

// sentOps is how many of ops the sender sends: the events, and one
// version of each key (the outbox keeps only a key's newest version
// that waits).
func sentOps(ops []workloadOp) int64 {
	keys := map[string]bool{}
	var n int64
	for _, op := range ops {
		if op.kind == edgesync.StateOp {
			keys[op.key] = true
		} else {
			n++
		}
	}
	return n + int64(len(keys))
}

// TestPackKeepsPriority: a backlog of every priority, put least important
// first, goes in packs of one priority each and in priority order: every
// critical op reaches the core before any normal, analytics or
// background op. A critical op put while the backlog's packs are on a
// slow link goes on its own stream, ahead of them, and does not wait for
// them to drain.
func TestPackKeepsPriority(t *testing.T) {
	var ops []workloadOp
	prios := []edgesync.Priority{edgesync.Background, edgesync.Analytics, edgesync.Normal, edgesync.High, edgesync.Critical}
	for i, prio := range prios {
		n := 150
		if prio == edgesync.Critical {
			n = 10
		}
		ops = append(ops, smallBacklog(uint64(1000*i), n, prio, prio.String())...)
	}
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	opts, _ := shaped(symmetricLink("500 kbit/s", 500_000, 40*time.Millisecond, 0))
	a, enq := startWithBacklog(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), opts, ops)
	testutil.WaitFor(t, time.Minute, "the backlog to drain", func() bool { return outboxEmpty(a) })
	checkDelivered(t, c, "site-1", enq, ops)
	if st := a.Stats()[0]; st.Packs == 0 {
		t.Fatal("no packs: the backlog went one op per stream")
	}
	rank := eventRanks(t, c)
	byPrio := map[edgesync.Priority][]int{}
	for i, op := range ops {
		if op.kind == edgesync.EventOp {
			byPrio[op.prio] = append(byPrio[op.prio], rank[enq[i].ID])
		}
	}
	lastCritical := maxInt(byPrio[edgesync.Critical])
	for _, q := range []edgesync.Priority{edgesync.Normal, edgesync.Analytics, edgesync.Background} {
		if first := minInt(byPrio[q]); first < lastCritical {
			t.Errorf("a %s op (rank %d) arrived before a critical one (rank %d)", q, first, lastCritical)
		}
	}
	for _, p := range prios {
		t.Logf("%-10s arrival ranks: median %d, first %d, last %d", p, medianInt(byPrio[p]), minInt(byPrio[p]), maxInt(byPrio[p]))
	}

	// A critical op put while packs of normal ops fill the link: the link
	// takes about 180 of them a second, fewer than are put.
	var late []workloadOp
	for i := range 3 {
		late = append(late, smallBacklog(uint64(100*i+7), 300, edgesync.Normal, fmt.Sprintf("late-%d", i))...)
	}
	for _, op := range late {
		enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: op.key, Priority: op.prio, Kind: op.kind, Payload: bytes.NewReader(op.payload)})
	}
	ob, err := a.Outbox().Stats()
	if err != nil {
		t.Fatal(err)
	}
	waiting := ob.Total.Ops // late ops not yet acknowledged
	if waiting < 100 {
		t.Fatalf("only %d of the late ops wait when the critical op is put: the link took them as fast as they were put", waiting)
	}
	crit := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "alarm", Priority: edgesync.Critical, Kind: edgesync.EventOp, Payload: bytes.NewReader([]byte("pump 3 dry"))})
	testutil.WaitFor(t, time.Minute, "the late backlog to drain", func() bool { return outboxEmpty(a) })
	rank = eventRanks(t, c)
	behind := 0 // late events stored after the critical one
	for _, r := range rank {
		if r > rank[crit.ID] {
			behind++
		}
	}
	t.Logf("the critical op arrived ahead of %d of the %d late ops that waited when it was put", behind, waiting)
	if behind < waiting/2 {
		t.Errorf("the critical op arrived ahead of only %d of the %d late ops that waited when it was put: it waited behind their packs", behind, waiting)
	}
}

// eventRanks are the places of site-1's events in the core's event log.
func eventRanks(t *testing.T, c *coretest.Core) map[edgesync.OpID]int {
	t.Helper()
	counts, seqs := coreEvents(t, c, "site-1")
	rank := map[edgesync.OpID]int{}
	for id := range counts {
		rank[id] = int(seqs[id])
	}
	return rank
}

// TestPackOneRefused: the core refuses ops of a pack for the agent's
// quota: those are parked, the others of the same pack are acknowledged
// and leave the outbox, and once the quota allows, the refused ones go
// again; every op is stored exactly once.
func TestPackOneRefused(t *testing.T) {
	defer setParkBackoff(t, 200*time.Millisecond)()
	p := testutil.NewPKI(t, "site-1")
	c, quota := quotaCore(t, p, 12<<10)
	var ops []workloadOp
	for i := range 20 {
		// 20 ops of 800 B fit one pack of the budget a session lets
		// out at first: half of minPackBudget (packbudget.go).
		ops = append(ops, workloadOp{key: fmt.Sprintf("ev/%d", i), kind: edgesync.EventOp, prio: edgesync.Normal, payload: testutil.RandomBytes(uint64(i+1), 800)})
	}
	a, enq := startWithBacklog(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), Options{}, ops)
	testutil.WaitFor(t, 30*time.Second, "the core to refuse ops of the pack for the quota", func() bool { return a.Stats()[0].Parked > 0 })
	st := a.Stats()[0]
	acked := ackedOps(st)
	if st.Packs != 1 || st.PackedOps != int64(len(ops)) {
		t.Fatalf("%d packs of %d ops; want the %d ops in one", st.Packs, st.PackedOps, len(ops))
	}
	if acked == 0 || acked >= int64(len(ops)) {
		t.Fatalf("%d of the pack's %d ops acked; want some acked and some refused", acked, len(ops))
	}
	if ob, err := a.Outbox().Stats(); err != nil || int64(ob.Total.Ops) != int64(len(ops))-acked {
		t.Fatalf("the outbox holds %d ops (%v) after %d of %d were acked; want the refused ones only", ob.Total.Ops, err, acked, len(ops))
	}
	if n := st.Nacks["quota"]; n == 0 {
		t.Errorf("nacks %v; want quota refusals", st.Nacks)
	}
	quota.Store(1 << 30)
	testutil.WaitFor(t, 30*time.Second, "the refused ops to go again once the quota allows", func() bool { return outboxEmpty(a) })
	checkDelivered(t, c, "site-1", enq, ops)
}

// TestPackCoreCut: the core closes while packs of a backlog are on a slow
// link, and comes back on the same store, granting the capability or
// not: the ops the core did not answer go again, and every op is stored
// exactly once.
func TestPackCoreCut(t *testing.T) {
	for _, regrant := range []bool{true, false} {
		t.Run(fmt.Sprintf("grants again %v", regrant), func(t *testing.T) {
			p := testutil.NewPKI(t, "site-1")
			store, err := core.Open(filepath.Join(t.TempDir(), "core.db"), core.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			server := func(packing bool) *core.Server {
				srv, err := core.NewServer(core.ServerConfig{Name: "core", TLS: p.ServerTLS(t), Store: store,
					Logger: testutil.Logger(t, "core"), DisableOpsPerStream: !packing})
				if err != nil {
					t.Fatal(err)
				}
				return srv
			}
			srv := server(true)
			addr, stop := coretest.Serve(t, srv, "127.0.0.1:0")
			ops := smallBacklog(5, 1500, edgesync.Normal, "n")
			opts, _ := shaped(symmetricLink("2 Mbit/s", 2_000_000, 40*time.Millisecond, 0))
			a, enq := startWithBacklog(t, p, quietConfig(coretest.AgentConfig(t, p, addr.String())), opts, ops)
			testutil.WaitFor(t, 30*time.Second, "packs under way", func() bool { return srv.Stats().OpsApplied > 0 })
			stop()
			applied := srv.Stats().OpsApplied
			if applied >= sentOps(ops) {
				t.Fatalf("the core applied all %d ops before it was cut; the test cuts nothing", applied)
			}
			srv2 := server(regrant)
			coretest.Serve(t, srv2, addr.String())
			testutil.WaitFor(t, 2*time.Minute, "the backlog to drain after the core came back", func() bool { return outboxEmpty(a) })
			checkDelivered(t, &coretest.Core{Server: srv2, Store: store, Addr: addr}, "site-1", enq, ops)
			st := a.Stats()[0]
			t.Logf("cut after %d ops applied; %d packs of %d ops, %d retries, %d duplicates at the core after",
				applied, st.Packs, st.PackedOps, st.Retries, srv2.Stats().OpsDuplicate)
		})
	}
}

// TestPackStatsCountStreamOps: ops of exactly wire.MaxPackedOpData
// random bytes encode to more than a packed op may carry (the chunk's
// mode byte), so each goes on a stream of its own (they joined a pack and
// were left out of it after its answers, until packable kept them out by
// packedOpSlack; behind the small ops here, they would have joined their
// pack): the stats count as packed only the ops the pack's stream carried
// (docs/design.md, "Packing small ops"), so that the ops sent, less the
// packed, plus the packs is the streams.
func TestPackStatsCountStreamOps(t *testing.T) {
	var ops []workloadOp
	for i := range 8 {
		op := workloadOp{key: fmt.Sprintf("ev/%d", i), kind: edgesync.EventOp, prio: edgesync.Normal,
			payload: testutil.RandomBytes(uint64(i+1), 300)}
		if i >= 4 {
			op.payload = testutil.RandomBytes(uint64(i+1), wire.MaxPackedOpData)
		}
		ops = append(ops, op)
	}
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, nil)
	opts, _ := shaped(linksim.Unshaped())
	a, enq := startWithBacklog(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), opts, ops)
	testutil.WaitFor(t, time.Minute, "the backlog to drain", func() bool { return outboxEmpty(a) })
	checkDelivered(t, c, "site-1", enq, ops)
	st := a.Stats()[0]
	if n := ackedOps(st); n != 8 || st.Retries != 0 {
		t.Fatalf("%d ops acked with %d retries; want 8 and none", n, st.Retries)
	}
	if st.Packs != 1 || st.PackedOps != 4 {
		t.Errorf("stats: %d packs of %d ops; want 1 pack of the 4 small ops (the 4 of 64 KiB went alone)", st.Packs, st.PackedOps)
	}
}
