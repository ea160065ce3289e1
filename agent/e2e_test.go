package agent

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestSendsToCoreExactlyOnce sends keyed and event ops of several sizes over
// real QUIC on loopback and checks that the core holds each byte for byte.
func TestSendsToCoreExactlyOnce(t *testing.T) {
	// The op data of large ops goes on the data lane when both ends agree
	// (CapLane), and on QUIC streams when either one declines.
	for _, tc := range []struct {
		name              string
		agentOff, coreOff bool
	}{
		{"lane", false, false},
		{"streams-agent-declines", true, false},
		{"streams-core-declines", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testutil.NewPKI(t, "site-1")
			c := coretest.Start(t, p, func(sc *core.ServerConfig) { sc.DisableLane = tc.coreOff })
			a := startAgent(t, p, coretest.AgentConfig(t, p, c.Addr.String()), Options{DisableLane: tc.agentOff})
			sendsExactlyOnce(t, a, c, !tc.agentOff && !tc.coreOff)
		})
	}
}

func sendsExactlyOnce(t *testing.T, a *Agent, c *coretest.Core, lane bool) {
	rnd := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	sizes := []int{0, 100, 4 << 10, 200 << 10, 3 << 20}
	for i, n := range sizes {
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(rnd.IntN(16)) // compressible
		}
		key := fmt.Sprintf("obj/%d", i)
		want[key] = data
		enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: key, Priority: edgesync.Priority(i % 6), Kind: edgesync.StateOp, Payload: bytes.NewReader(data)})
	}
	testutil.WaitFor(t, 30*time.Second, "the outbox to drain", func() bool { return outboxEmpty(a) })
	for key, data := range want {
		wantAtCore(t, c, key, data)
	}
	st := c.Server.Stats()
	if st.OpsApplied != int64(len(sizes)) {
		t.Errorf("core applied %d ops, want %d (stats %+v)", st.OpsApplied, len(sizes), st)
	}
	chunk := a.Config().Params["core"].ChunkSize
	as := a.Stats()[0]
	switch {
	case lane && (st.LaneOps == 0 || as.LaneOps != st.LaneOps):
		t.Errorf("with the lane agreed, core stored %d lane ops and the agent counted %d; want ≥ 1 and equal (chunk size %d)", st.LaneOps, as.LaneOps, chunk)
	case !lane && (st.LaneOps != 0 || as.LaneOps != 0 || as.Lane):
		t.Errorf("without the lane, core stored %d lane ops and the agent counted %d (lane up: %v); want none", st.LaneOps, as.LaneOps, as.Lane)
	}
}

// TestMixedOpsThroughLinks puts 1,000 mixed ops (all priorities, keyed and
// event, 100 B to 8 MiB, repeated versions of keys) through shaped links
// and checks that the core holds each exactly once, byte for byte.
func TestMixedOpsThroughLinks(t *testing.T) {
	for _, tc := range []struct {
		profile linksim.Profile
		class   edgesync.LinkClass
		wait    time.Duration
	}{
		{linksim.Broadband(), edgesync.Broadband, 2 * time.Minute},
		{linksim.SatelliteGEO(), edgesync.Satellite, 4 * time.Minute},
	} {
		t.Run(tc.profile.Name, func(t *testing.T) {
			if testing.Short() && tc.class == edgesync.Satellite {
				t.Skip("satellite run takes about a minute")
			}
			c, a, _ := shapedAgent(t, tc.profile)
			// Batch every 200 ms instead of the class's 5-60 s, and no
			// summaries: this test is about delivery through the link.
			pinFast(t, a, tc.class, 200*time.Millisecond)
			ops := mixedWorkload(42, 1000, 8<<20)
			enq := make([]outbox.Op, len(ops))
			for i, op := range ops {
				enq[i] = enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: op.key, Priority: op.prio, Kind: op.kind, Payload: bytes.NewReader(op.payload)})
			}
			testutil.WaitFor(t, tc.wait, "the outbox to drain through "+tc.profile.Name, func() bool { return outboxEmpty(a) })
			checkDelivered(t, c, "site-1", enq, ops)
			st := c.Server.Stats()
			t.Logf("%s: core applied %d ops, %d duplicates, %d bytes received", tc.profile.Name, st.OpsApplied, st.OpsDuplicate, st.BytesReceived)
		})
	}
}

// TestMutualTLSRefusals: an agent whose certificate another CA signed is
// refused by the core; a core whose certificate another CA signed is
// refused by the agent. Neither sends a byte of data.
func TestMutualTLSRefusals(t *testing.T) {
	good := testutil.NewPKI(t, "site-1")
	other := testutil.NewPKI(t, "intruder")
	c := coretest.Start(t, good, nil)

	// Agent with a certificate from another CA (trusting the right CA).
	cfg := coretest.AgentConfig(t, good, c.Addr.String())
	cfg.TLS.Cert, cfg.TLS.Key = other.AgentCert, other.AgentKey
	bad := startAgentTLS(t, cfg, good.CAFile, other.AgentCert, other.AgentKey)
	enqueue(t, bad, outbox.NewOp{Endpoint: "core", Key: "x", Priority: edgesync.Critical, Payload: bytes.NewReader([]byte("secret"))})
	testutil.WaitFor(t, 20*time.Second, "the agent to fail dialling", func() bool { return bad.Stats()[0].DialFailures >= 1 })
	if st := c.Server.Stats(); st.OpsApplied != 0 || st.Accepted != 0 {
		t.Fatalf("core accepted an agent with a foreign certificate: %+v", st)
	}

	// Core with a certificate from another CA: the agent refuses it.
	impostor := coretest.Start(t, other, nil)
	cfg2 := coretest.AgentConfig(t, good, impostor.Addr.String())
	a := startAgent(t, good, cfg2, Options{})
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "y", Priority: edgesync.Critical, Payload: bytes.NewReader([]byte("secret"))})
	testutil.WaitFor(t, 20*time.Second, "the agent to refuse the core", func() bool { return a.Stats()[0].DialFailures >= 1 })
	if st := impostor.Server.Stats(); st.OpsApplied != 0 {
		t.Fatalf("agent sent data to a core with a foreign certificate: %+v", st)
	}
	if n, _ := a.Outbox().Stats(); n.Total.Ops != 1 {
		t.Fatalf("the op must stay queued, outbox holds %d", n.Total.Ops)
	}
}

// startAgentTLS starts an agent with the given TLS files, whatever its
// config names.
func startAgentTLS(t *testing.T, cfg config.Agent, ca, cert, key string) *Agent {
	t.Helper()
	tlsConf, err := pki.ClientTLSConfig(ca, cert, key, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return startAgentOpts(t, cfg, Options{TLS: tlsConf})
}

// randomish returns n bytes that zstd shrinks by about half.
func randomish(n int) []byte {
	rnd := rand.New(rand.NewPCG(9, 9))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rnd.IntN(16)) * 17
	}
	return b
}

// startSatellite starts a core and an agent whose link is prof, pinned
// to satellite with its batches 100 ms apart.
func startSatellite(t *testing.T, prof linksim.Profile) (*Agent, *coretest.Core) {
	t.Helper()
	c, a, _ := shapedAgent(t, prof)
	pinFast(t, a, edgesync.Satellite, 100*time.Millisecond)
	return a, c
}

// startBulk enqueues payload as the background op "bulk" and waits until
// the core holds part of it.
func startBulk(t *testing.T, a *Agent, c *coretest.Core, kind edgesync.OpKind, payload []byte) outbox.Op {
	t.Helper()
	op := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "bulk", Priority: edgesync.Background, Kind: kind, Payload: bytes.NewReader(payload)})
	waitPartial(t, c, op.ID, 1, 60*time.Second, "the bulk transfer to be under way")
	return op
}

// sendCritical enqueues a critical event op "alarm" and returns how long
// it took from the enqueue until the core applied it.
func sendCritical(t *testing.T, a *Agent, c *coretest.Core, alarm string) time.Duration {
	t.Helper()
	start := time.Now()
	crit := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "alarm", Priority: edgesync.Critical, Kind: edgesync.EventOp, Payload: bytes.NewReader([]byte(alarm))})
	testutil.WaitFor(t, 30*time.Second, "the critical op at the core", func() bool {
		ok, _ := c.Store.Applied("site-1", crit.ID)
		return ok
	})
	return time.Since(start)
}

// sendCriticalWithinBound sends a critical op with sendCritical and fails
// t unless it reaches the core within its latency bound on prof
// (docs/design.md#goals): 2 s plus one chunk's serialisation time at
// prof's uplink rate. during says what the link carries meanwhile.
func sendCriticalWithinBound(t *testing.T, a *Agent, c *coretest.Core, alarm string, prof linksim.Profile, during string) {
	t.Helper()
	took := sendCritical(t, a, c, alarm)
	chunk := a.Config().Params["core"].ChunkSize
	bound := 2*time.Second + time.Duration(float64(chunk*8)/float64(prof.Up.RateBps)*float64(time.Second))
	t.Logf("critical op reached the core %v after enqueue during %s (bound %v)", took, during, bound)
	if took > bound {
		t.Fatalf("critical op took %v during %s, want ≤ %v", took, during, bound)
	}
}

// TestCriticalOvertakesBulk enqueues a critical op while a 64 MiB
// background transfer runs on satellite-geo and measures when it reaches
// the core: within 2 s plus one chunk's serialisation time.
func TestCriticalOvertakesBulk(t *testing.T) {
	if testing.Short() {
		t.Skip("satellite transfer")
	}
	prof := linksim.SatelliteGEO()
	a, c := startSatellite(t, prof)
	bulkOp := startBulk(t, a, c, edgesync.EventOp, randomish(64<<20))
	sendCriticalWithinBound(t, a, c, `{"alarm":"fire"}`, prof, "a 64 MiB transfer")
	if ok, _ := c.Store.Applied("site-1", bulkOp.ID); ok {
		t.Fatalf("the bulk transfer finished first; the test proved nothing")
	}
}

// TestLaneLossySatellite sends a large op through satellite-geo-lossy (2
// Mbit/s, 600 ms RTT, 1 % loss each way), where its data goes on the data
// lane: it arrives byte-identical and exactly once, and a critical op
// enqueued while it is under way reaches the core first.
func TestLaneLossySatellite(t *testing.T) {
	if testing.Short() {
		t.Skip("satellite transfer")
	}
	a, c := startSatellite(t, linksim.SatelliteGEOLossy())
	payload := randomish(2 << 20) // about 1 MiB on the wire after zstd
	bulk := startBulk(t, a, c, edgesync.StateOp, payload)
	if !a.Stats()[0].Lane {
		t.Fatal("the connection has no data lane; the test would prove nothing")
	}
	took := sendCritical(t, a, c, `{"alarm":"flood"}`)
	bulkDone, _ := c.Store.Applied("site-1", bulk.ID)
	t.Logf("critical op reached the core %v after enqueue during the lane transfer", took)
	if bulkDone {
		t.Fatal("the bulk op finished before the critical op; nothing was overtaken")
	}
	// Generous: one RTT, the bottleneck queue, and a retransmission if
	// the 1 % loss hits the critical op's packets.
	if took > 5*time.Second {
		t.Fatalf("critical op took %v during a lane transfer, want ≤ 5s", took)
	}
	testutil.WaitFor(t, 2*time.Minute, "the bulk op at the core", func() bool { return outboxEmpty(a) })
	wantAtCore(t, c, "bulk", payload)
	st, as := c.Server.Stats(), a.Stats()[0]
	if st.OpsApplied != 2 || st.LaneOps != 1 || as.LaneOps != 1 {
		t.Fatalf("core applied %d ops (%d via the lane, agent counts %d); want 2, 1 via the lane", st.OpsApplied, st.LaneOps, as.LaneOps)
	}
	t.Logf("lane carried %d encoded bytes; core dropped %d lane bytes of abandoned attempts", as.LaneBytes, st.LaneDropped)
}

// TestLanePauseResumes changes the link class while a large op's data is
// on the lane: the transfer pauses at a chunk boundary, abandoning the lane
// transfers in flight, and resumes under the new chunk size with a fresh
// lane transfer number; the core ends up with the op once, byte-identical.
func TestLanePauseResumes(t *testing.T) {
	c, a, _ := shapedAgent(t, linksim.Broadband())
	fast := 100 * time.Millisecond
	off := false
	for _, class := range []edgesync.LinkClass{edgesync.Mobile, edgesync.Broadband} {
		o := linkmon.Override{Interval: &fast, SummaryOnly: &off}
		if class == edgesync.Broadband {
			// 1 MiB chunks whatever the link measures: a loaded machine's
			// first samples read Gbit/s, which sizes broadband's chunks at
			// their 4 MiB top, and the op, one chunk then, went whole on
			// its stream instead of resuming on the lane.
			o.ChunkSize = 1 << 20
		}
		if err := a.SetProfile(class, o); err != nil {
			t.Fatal(err)
		}
	}
	mobile, broadband := edgesync.Mobile, edgesync.Broadband
	if err := a.Switch("core", linkmon.Pin{Class: &mobile}); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 4<<20)
	rnd := rand.New(rand.NewPCG(3, 4))
	for i := range payload {
		payload[i] = byte(rnd.Uint32()) // incompressible: 4 MiB on the wire
	}
	op := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "big", Priority: edgesync.Normal, Kind: edgesync.StateOp, Payload: bytes.NewReader(payload)})
	waitPartial(t, c, op.ID, 1<<20, 60*time.Second, "a quarter of the op at the core")
	if err := a.Switch("core", linkmon.Pin{Class: &broadband}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 2*time.Minute, "the op at the core", func() bool { return outboxEmpty(a) })
	wantAtCore(t, c, "big", payload)
	st, as := c.Server.Stats(), a.Stats()[0]
	if as.Paused < 1 {
		t.Fatalf("the transfer never paused (stats %+v); the test proved nothing", as)
	}
	if st.OpsApplied != 1 || st.OpsDuplicate != 0 || st.LaneOps != 1 {
		t.Fatalf("core applied %d ops, %d duplicates, %d via the lane; want 1, 0, 1", st.OpsApplied, st.OpsDuplicate, st.LaneOps)
	}
	t.Logf("paused %d times; core dropped %d lane bytes of abandoned attempts", as.Paused, st.LaneDropped)
}

// TestLaneCompressibleOp sends a large op that compresses to a few KiB on
// a satellite link, where its data goes on the data lane, as a critical
// op: it reaches the core and the outbox drains. (Its lane transfer is
// tiny next to the op: a core that took the transfer's bytes as arriving
// twice refused it and the op stayed parked.)
func TestLaneCompressibleOp(t *testing.T) {
	if testing.Short() {
		t.Skip("satellite transfer")
	}
	// The link was fiber a moment ago: the lane starts at fiber's rate.
	c, a, link := shapedAgent(t, linksim.Fiber())
	testutil.WaitFor(t, 30*time.Second, "the link measured and classed", func() bool {
		st, err := a.Status("core")
		return err == nil && st.Class != edgesync.Unknown && st.Figures.BandwidthBps > 0
	})
	link().SetProfile(linksim.SatelliteGEO())
	testutil.WaitFor(t, 30*time.Second, "the link classed satellite", func() bool {
		st, err := a.Status("core")
		return err == nil && st.Class == edgesync.Satellite
	})
	payload := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB, a few KiB after zstd
	op := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "pattern", Priority: edgesync.Critical, Kind: edgesync.StateOp, Payload: bytes.NewReader(payload)})
	testutil.WaitFor(t, time.Minute, "the compressible op at the core", func() bool {
		ok, _ := c.Store.Applied("site-1", op.ID)
		return ok
	})
	wantAtCore(t, c, "pattern", payload)
	if st := c.Server.Stats(); st.LaneOps != 1 {
		t.Fatalf("the core applied %d ops via the lane, want 1: the test would prove nothing", st.LaneOps)
	}
}

// TestOutageQueuesThenDrainsByPriority cuts the link for 20 s in the middle
// of a transfer: ops enqueued meanwhile wait in the outbox, the monitor
// calls the link intermittent, and when the link returns everything
// arrives, most important first.
func TestOutageQueuesThenDrainsByPriority(t *testing.T) {
	if testing.Short() {
		t.Skip("a 20 s outage")
	}
	c, a, link := shapedAgent(t, linksim.Broadband())
	testutil.WaitFor(t, 30*time.Second, "a connection", func() bool { return link() != nil && a.Stats()[0].Connected })

	// A large transfer is under way when the link goes.
	bulk := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "bulk", Priority: edgesync.Background, Kind: edgesync.EventOp, Payload: bytes.NewReader(randomish(8 << 20))})
	waitPartial(t, c, bulk.ID, 1, 90*time.Second, "the bulk transfer under way")
	if err := link().SetProfile(linksim.Outage()); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	testutil.WaitFor(t, 5*time.Second, "the link to be called intermittent", func() bool {
		st, _ := a.Status("core")
		return st.Measured == edgesync.Intermittent
	})
	t.Logf("outage detected after %v", time.Since(cut).Round(time.Millisecond))

	// Ops of every priority queue up while the link is down, least
	// important first so that arrival order is not enqueue order.
	var ops []outbox.Op
	for i := 0; i < 6; i++ {
		for _, prio := range []edgesync.Priority{edgesync.Background, edgesync.Analytics, edgesync.Normal, edgesync.High, edgesync.Schema, edgesync.Critical} {
			ops = append(ops, enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("ev/%s/%d", prio, i), Priority: prio,
				Kind: edgesync.EventOp, Payload: bytes.NewReader(randomish(2000 + i))}))
		}
	}
	if applied := c.Server.Stats().OpsApplied; applied != 0 {
		t.Fatalf("%d ops reached the core through a dead link", applied)
	}
	testutil.WaitFor(t, 25*time.Second, "20 s of outage", func() bool { return time.Since(cut) >= 20*time.Second })
	if st, _ := a.Outbox().Stats(); st.Total.Ops != len(ops)+1 {
		t.Fatalf("outbox holds %d ops during the outage, want %d", st.Total.Ops, len(ops)+1)
	}
	if err := link().SetProfile(linksim.Broadband()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 2*time.Minute, "the backlog to drain", func() bool { return outboxEmpty(a) })

	// Arrival order: the core's event log.
	evs, err := c.Store.Events("site-1", 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	rank := map[edgesync.OpID]int{}
	for i, e := range evs {
		rank[e.OpID] = i
	}
	byPrio := map[edgesync.Priority][]int{}
	for _, op := range ops {
		r, ok := rank[op.ID]
		if !ok {
			t.Fatalf("op %s (%s) missing at the core", op.ID, op.Key)
		}
		byPrio[op.Priority] = append(byPrio[op.Priority], r)
	}
	// Every critical op arrives before any normal, analytics or
	// background op. The ordinary priorities keep their order too unless
	// a packet of the link's 0.1 % loss is resent (docs/design.md,
	// "Priorities"), so their order is logged, not asserted.
	lastCritical := maxInt(byPrio[edgesync.Critical])
	for _, q := range []edgesync.Priority{edgesync.Normal, edgesync.Analytics, edgesync.Background} {
		if first := minInt(byPrio[q]); first < lastCritical {
			t.Errorf("a %s op (rank %d) arrived before a critical one (rank %d)", q, first, lastCritical)
		}
	}
	for _, p := range edgesync.Priorities() {
		t.Logf("%-10s arrival ranks %v (median %d)", p, byPrio[p], medianInt(byPrio[p]))
	}
}

func maxInt(v []int) int {
	m := v[0]
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func minInt(v []int) int {
	m := v[0]
	for _, x := range v {
		m = min(m, x)
	}
	return m
}

func medianInt(v []int) int {
	s := append([]int(nil), v...)
	sort.Ints(s)
	return s[len(s)/2]
}
