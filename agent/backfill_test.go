package agent

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// arrivals is the core's store with a record, in order, of the summaries
// and full ops it stored: what arrived when, as the core saw it.
type arrivals struct {
	core.Backend
	mu  sync.Mutex
	log []arrival
}

type arrival struct {
	id      edgesync.OpID
	summary bool
}

func (r *arrivals) add(id edgesync.OpID, summary bool) {
	r.mu.Lock()
	r.log = append(r.log, arrival{id, summary})
	r.mu.Unlock()
}

func (r *arrivals) list() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.log)
}

func (r *arrivals) PutSummary(agent string, sum core.Summary) error {
	err := r.Backend.PutSummary(agent, sum)
	if err == nil {
		r.add(sum.OpID, true)
	}
	return err
}

func (r *arrivals) CommitPartial(agent string, id edgesync.OpID) (core.Result, error) {
	res, err := r.Backend.CommitPartial(agent, id)
	if err == nil && !res.Duplicate {
		r.add(id, false)
	}
	return res, err
}

// ReleasePartial keeps the store's optional ability (core.PartialReleaser).
func (r *arrivals) ReleasePartial(agent string, id edgesync.OpID) error {
	if pr, ok := r.Backend.(core.PartialReleaser); ok {
		return pr.ReleasePartial(agent, id)
	}
	return nil
}

// satelliteSite is a core recording its arrivals and an agent, not yet
// started, on an always-satellite link (600 ms RTT, 2 Mbit/s up), pinned
// to satellite with its default summary-first parameters and batches
// interval apart.
func satelliteSite(t testing.TB, interval time.Duration) (*Agent, *coretest.Core, *arrivals) {
	a, c, rec, _ := satelliteLink(t, interval)
	return a, c, rec
}

// satelliteLink is satelliteSite that also returns the agent's link, once
// it is open.
func satelliteLink(t testing.TB, interval time.Duration) (*Agent, *coretest.Core, *arrivals, func() *linksim.Conn) {
	t.Helper()
	p := testutil.NewPKI(t, "site-1")
	rec := &arrivals{}
	c := coretest.Start(t, p, func(sc *core.ServerConfig) { rec.Backend, sc.Store = sc.Store, rec })
	a, link := satelliteAgent(t, p, coretest.AgentConfig(t, p, c.Addr.String()), interval)
	return a, c, rec, link
}

// satelliteAgent is a new agent, not yet started, with cfg behind an
// always-satellite link, pinned to satellite with batches interval apart.
func satelliteAgent(t testing.TB, p *testutil.PKI, cfg config.Agent, interval time.Duration) (*Agent, func() *linksim.Conn) {
	t.Helper()
	opts, link := shaped(linksim.SatelliteGEO())
	a := newAgent(t, p, cfg, opts)
	sat := edgesync.Satellite
	if err := a.SetProfile(sat, linkmon.Override{Interval: &interval}); err != nil {
		t.Fatal(err)
	}
	if err := a.Switch("core", linkmon.Pin{Class: &sat}); err != nil {
		t.Fatal(err)
	}
	return a, link
}

// compressible returns n bytes of seed's that zstd shrinks by about half.
func compressible(seed uint64, n int) []byte {
	rnd := rand.New(rand.NewPCG(seed, seed^0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rnd.IntN(16)) * 17
	}
	return b
}

// backfillOp is an op of TestBackfillSatellite and its payload.
type backfillOp struct {
	op      outbox.Op
	payload []byte
}

// TestBackfillSatellite puts small and large ops of every priority into
// an agent whose link is satellite all the time: every op arrives in full
// and byte-identical; those of normal, analytics and background priority
// send their summary first, and every summary arrives before any of their
// full data; full data arrives in priority order, oldest first within a
// priority (small ops pipelined together may land in any order among
// themselves).
func TestBackfillSatellite(t *testing.T) {
	a, c, rec := satelliteSite(t, 100*time.Millisecond)
	var ops []backfillOp
	sizes := []int{2 << 10, 6 << 10, 96 << 10} // the last is a bulk op (> one chunk)
	for i, size := range sizes {
		for _, prio := range edgesync.Priorities() {
			kind, key := edgesync.EventOp, fmt.Sprintf("events/%s/%d", prio, i)
			if (i+int(prio))%2 == 1 {
				kind, key = edgesync.StateOp, fmt.Sprintf("state/%s/%d", prio, i)
			}
			payload := compressible(uint64(i*10+int(prio)), size)
			op := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: key, Priority: prio, Kind: kind,
				Payload: bytes.NewReader(payload), Summary: []byte("summary of " + key)})
			ops = append(ops, backfillOp{op, payload})
		}
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 2*time.Minute, "every op to arrive in full through the satellite link", func() bool { return outboxEmpty(a) })

	// Byte-identical at the core.
	_, seqs := coreEvents(t, c, "site-1")
	for _, o := range ops {
		var got []byte
		var err error
		if o.op.Kind == edgesync.EventOp {
			got, err = eventData(c, "site-1", seqs[o.op.ID])
		} else {
			got, err = c.Data("site-1", o.op.Key)
		}
		if err != nil || !bytes.Equal(got, o.payload) {
			t.Fatalf("%s (%s): the core holds %d bytes (%v), the agent sent %d, or they differ", o.op.Key, o.op.Priority, len(got), err, len(o.payload))
		}
	}

	// Summaries first, then full data.
	log := rec.list()
	byID := map[edgesync.OpID]backfillOp{}
	for _, o := range ops {
		byID[o.op.ID] = o
	}
	summaryAt, fullAt := map[edgesync.OpID]int{}, map[edgesync.OpID]int{}
	lastSummary, firstBackfill := -1, len(log)
	for i, ar := range log {
		if ar.summary {
			if _, dup := summaryAt[ar.id]; dup {
				t.Fatalf("op %s: its summary arrived twice", byID[ar.id].op.Key)
			}
			summaryAt[ar.id], lastSummary = i, i
			continue
		}
		fullAt[ar.id] = i
		if _, ok := summaryAt[ar.id]; ok {
			firstBackfill = min(firstBackfill, i)
		}
	}
	for _, o := range ops {
		want := linkmon.DefaultSummaries.Has(o.op.Priority)
		s, hasSummary := summaryAt[o.op.ID]
		switch {
		case hasSummary != want:
			t.Fatalf("%s (%s): summary arrived %t, want %t", o.op.Key, o.op.Priority, hasSummary, want)
		case hasSummary && s > fullAt[o.op.ID]:
			t.Fatalf("%s (%s): its full data arrived before its summary", o.op.Key, o.op.Priority)
		}
	}
	if lastSummary > firstBackfill {
		t.Fatalf("a summary arrived (#%d) after backfilled full data (#%d): %v", lastSummary, firstBackfill, log)
	}

	// Full data in priority order, oldest first.
	var full []backfillOp
	for _, ar := range log {
		if o := byID[ar.id]; !ar.summary && !o.op.Priority.SendsAtOnce() {
			full = append(full, o)
		}
	}
	for i := range full {
		for j := i + 1; j < len(full); j++ {
			x, y := full[i], full[j]
			if !rankOf(y.op).before(rankOf(x.op)) {
				continue
			}
			pipelined := x.op.Priority == y.op.Priority && len(x.payload) <= 16<<10 && len(y.payload) <= 16<<10
			if !pipelined {
				t.Fatalf("%s (%s, %d B) arrived in full before %s (%s, %d B), which ranks after it", x.op.Key, x.op.Priority, len(x.payload), y.op.Key, y.op.Priority, len(y.payload))
			}
		}
	}
	st := a.Stats()[0]
	if st.Backfilled != int64(len(summaryAt)) {
		t.Fatalf("transport.stats counts %d ops backfilled, the core got %d summaries", st.Backfilled, len(summaryAt))
	}
	t.Logf("%d ops: %d summaries first, then in full; %d arrivals in all", len(ops), len(summaryAt), len(log))
}

// TestBackfillCriticalOvertakes puts a critical op while a large op's
// backfill fills an always-satellite link: the critical op reaches the
// core within its latency bound (docs/design.md#goals: 2 s plus one
// chunk's serialisation time) while the backfill is still under way.
func TestBackfillCriticalOvertakes(t *testing.T) {
	a, c, rec := satelliteSite(t, 100*time.Millisecond)
	bulk := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "camera/archive", Priority: edgesync.Background, Kind: edgesync.EventOp,
		Payload: bytes.NewReader(compressible(1, 3<<20)), Summary: []byte("camera archive")})
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitPartial(t, c, bulk.ID, 1, time.Minute, "the backfill to be under way")
	if log := rec.list(); len(log) == 0 || !log[0].summary || log[0].id != bulk.ID {
		t.Fatalf("the op's summary did not arrive first: %v", log)
	}
	sendCriticalWithinBound(t, a, c, `{"alarm":"bilge high"}`, linksim.SatelliteGEO(), "a 3 MiB backfill")
	if done, _ := c.Store.Applied("site-1", bulk.ID); done {
		t.Fatal("the backfill finished first; the test proved nothing")
	}
}

// TestBackfillStatus: transport.bandwidth.status says per priority what
// is held as summary and what is backfilling while a backfill runs, and
// its drain estimate counts the wait for the next batch.
func TestBackfillStatus(t *testing.T) {
	a, _, _ := satelliteSite(t, time.Hour)
	big := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "logs/big", Priority: edgesync.Background, Kind: edgesync.EventOp,
		Payload: bytes.NewReader(compressible(2, 2<<20))})
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "stats/1", Priority: edgesync.Analytics, Kind: edgesync.EventOp,
		Payload: bytes.NewReader(compressible(3, 4<<10))})
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var st LinkStatus
	testutil.WaitFor(t, time.Minute, "the large op backfilling with the link's bandwidth known", func() bool {
		var err error
		st, err = a.Status("core")
		bg := st.Summaries["background"]
		return err == nil && bg.Backfilling.Ops == 1 && st.Figures.BandwidthBps > 0 && bg.DrainETA > 0
	})
	if held := a.Stats()[0].SummaryHeld["background"]; held.Ops != 1 || held.Bytes != big.Size {
		t.Fatalf("transport.stats: background held as summary %+v, want the large op", held)
	}
	bg := st.Summaries["background"]
	if bg.Held.Ops != 1 || bg.Held.Bytes != big.Size || bg.Backfilling.Bytes <= 0 || bg.Backfilling.Bytes > big.Size {
		t.Fatalf("background while backfilling: %+v", bg)
	}
	if st.DrainETA < bg.DrainETA || st.DrainETA > 10*time.Minute {
		t.Fatalf("drain ETA %v, background's %v: want the backlog's, within minutes at %v", st.DrainETA, bg.DrainETA, st.Figures.BandwidthBps)
	}
	testutil.WaitFor(t, time.Minute, "the backfill to finish", func() bool { return outboxEmpty(a) })
	if st, err := a.Status("core"); err != nil || st.Summaries["background"].Held.Ops != 0 || st.Summaries["analytics"].Held.Ops != 0 {
		t.Fatalf("after the backfill: %+v, %v", st.Summaries, err)
	}
	// The batch is drained; the next opens in an hour. An op put now
	// waits for it, and the estimate says so.
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "logs/late", Priority: edgesync.Background, Kind: edgesync.EventOp,
		Payload: bytes.NewReader(compressible(4, 8<<10))})
	st = mustStatus(t, a)
	if eta := st.Summaries["background"].DrainETA; eta < 50*time.Minute || eta > time.Hour+time.Minute || st.DrainETA != eta {
		t.Fatalf("an op waiting for the batch in an hour: drain ETA %v (background %v), want about an hour", st.DrainETA, eta)
	}
}

// TestBackfillNewerOpOvertakes puts a normal op while a large background
// op's backfill holds the satellite link's one bulk slot: its summary goes
// at once, the background transfer pauses at a chunk boundary for its full
// data, which arrives first, and the background op resumes and arrives in
// full.
func TestBackfillNewerOpOvertakes(t *testing.T) {
	a, c, rec := satelliteSite(t, 100*time.Millisecond)
	bgPayload := compressible(5, 3<<20)
	bg := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "camera/archive", Priority: edgesync.Background, Kind: edgesync.EventOp,
		Payload: bytes.NewReader(bgPayload), Summary: []byte("camera archive")})
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitPartial(t, c, bg.ID, 1, time.Minute, "the background backfill to be under way")
	nPayload := compressible(6, 256<<10) // more than one chunk: it needs the bulk slot
	n := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "sensors/batch", Priority: edgesync.Normal, Kind: edgesync.StateOp,
		Payload: bytes.NewReader(nPayload), Summary: []byte("sensor batch")})
	testutil.WaitFor(t, 2*time.Minute, "both ops in full at the core", func() bool { return outboxEmpty(a) })
	var order []string
	for _, ar := range rec.list() {
		name := map[edgesync.OpID]string{bg.ID: "background", n.ID: "normal"}[ar.id]
		if ar.summary {
			name += " summary"
		}
		order = append(order, name)
	}
	want := []string{"background summary", "normal summary", "normal", "background"}
	if !slices.Equal(order, want) {
		t.Fatalf("arrivals at the core %q, want %q", order, want)
	}
	if st := a.Stats()[0]; st.Paused < 1 {
		t.Fatalf("the background transfer never paused for the normal op (stats %+v)", st)
	}
	wantAtCore(t, c, "sensors/batch", nPayload)
	_, seqs := coreEvents(t, c, "site-1")
	if got, err := eventData(c, "site-1", seqs[bg.ID]); err != nil || !bytes.Equal(got, bgPayload) {
		t.Fatalf("background op: the core holds %d bytes (%v), sent %d, or they differ", len(got), err, len(bgPayload))
	}
}

// TestBackfillAfterRestart stops an agent after its ops' summaries went
// and while their backfill runs: the next agent on the same data directory
// sends no summary again, and the full data follows, resumed where the
// core holds it.
func TestBackfillAfterRestart(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	rec := &arrivals{}
	c := coretest.Start(t, p, func(sc *core.ServerConfig) { rec.Backend, sc.Store = sc.Store, rec })
	cfg := coretest.AgentConfig(t, p, c.Addr.String())
	a, _ := satelliteAgent(t, p, cfg, 100*time.Millisecond)
	big, small := compressible(7, 3<<19), compressible(8, 8<<10)
	bigOp := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "logs/big", Priority: edgesync.Background, Kind: edgesync.EventOp,
		Payload: bytes.NewReader(big), Summary: []byte("big log")})
	smallOp := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "logs/small", Priority: edgesync.Background, Kind: edgesync.EventOp,
		Payload: bytes.NewReader(small), Summary: []byte("small log")})
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitPartial(t, c, bigOp.ID, 256<<10, time.Minute, "the large op's backfill under way")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a2, _ := satelliteAgent(t, p, cfg, 100*time.Millisecond)
	if st, err := a2.Status("core"); err != nil || st.Summaries["background"].Held.Ops != 2 {
		t.Fatalf("after the restart, before connecting: held as summary %+v (%v), want both ops", st.Summaries["background"], err)
	}
	if err := a2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, time.Minute, "both ops in full at the core", func() bool { return outboxEmpty(a2) })
	summaries := 0
	for _, ar := range rec.list() {
		if ar.summary {
			summaries++
		}
	}
	if summaries != 2 {
		t.Fatalf("the core got %d summaries for 2 ops: a restart sent one again", summaries)
	}
	_, seqs := coreEvents(t, c, "site-1")
	for _, o := range []struct {
		op      outbox.Op
		payload []byte
	}{{bigOp, big}, {smallOp, small}} {
		if got, err := eventData(c, "site-1", seqs[o.op.ID]); err != nil || !bytes.Equal(got, o.payload) {
			t.Fatalf("%s: the core holds %d bytes (%v), sent %d, or they differ", o.op.Key, len(got), err, len(o.payload))
		}
	}
	// The small op waited behind the large one (a bulk op goes alone
	// among its priority's), so the restarted agent sent both in full.
	if st := a2.Stats()[0]; st.Backfilled != 2 {
		t.Fatalf("the restarted agent backfilled %d ops, want 2", st.Backfilled)
	}
}

// TestBackfillWaitsForUrgentWrite: the full data of an op whose summary
// the core has (backfill) starts under the write order too
// (writeorder.go): while a stream of a more urgent level started before
// it has not written its data, a normal op's backfill waits, as a normal
// op leased then does, and it starts once that data is written. In the
// dispatch that started a high op, dispatchOrdinary's call of
// dispatchBackfill (for the next op leased, or once nothing more was)
// started a normal backfill beside it, and the worker that wrote first
// had its data in packets first.
func TestBackfillWaitsForUrgentWrite(t *testing.T) {
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if _, err := ob.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: "ev/1", Priority: edgesync.Normal,
		Kind: edgesync.EventOp, Payload: bytes.NewReader(make([]byte, 1000))}); err != nil {
		t.Fatal(err)
	}
	ops, err := ob.Lease("core", 1, ordinary...)
	if err != nil || len(ops) != 1 {
		t.Fatalf("lease: %d ops, %v; want the op", len(ops), err)
	}
	mon, err := linkmon.NewMonitor(linkmon.Default(), linkmon.MonitorOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := &session{e: &endpoint{mon: mon}, ob: ob, name: "core", log: hclog.NewNullLogger(), done: make(chan workerDone, 4),
		keys: map[string]bool{}, deferred: map[string][]edgesync.OpID{}, order: newWriteOrder()}
	s.pool.New = func() any { return newOpSender() }
	defer s.fullWake.stop()
	// The worker started goes no further than the payload: with the
	// outbox closed it releases the op, which fails, and reports.
	if err := ob.Close(); err != nil {
		t.Fatal(err)
	}
	p := linkmon.SyncParameters{ChunkSize: 64 << 10, Concurrency: 2}
	wrote := s.order.begin(edgesync.High) // a high op's worker, its data not written yet
	s.bf.push(ops[0])
	s.dispatchBackfill(p, last, minPackBudget)
	if len(s.bf.queue) != 1 || s.inflight[slotSmall] != 0 {
		wrote()
		s.wg.Wait()
		t.Fatalf("a normal op's backfill started while a high op started before it had not written its data "+
			"(%d queued, %d in flight); want it to wait for that write", len(s.bf.queue), s.inflight[slotSmall])
	}
	wrote()
	s.dispatchBackfill(p, last, minPackBudget)
	if len(s.bf.queue) != 0 || s.inflight[slotSmall] != 1 {
		t.Fatalf("after the high op's data was written: %d backfill ops queued, %d in flight; want it started",
			len(s.bf.queue), s.inflight[slotSmall])
	}
	select {
	case d := <-s.done:
		s.account(d)
	case <-time.After(10 * time.Second):
		t.Fatal("timed out after 10s waiting for the backfill worker's answer")
	}
	s.wg.Wait()
}

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
	opts.DisableSummaryFirstPacks = agentOff
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
