package jsstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestJetStreamFull: the NATS server's JetStream storage (max_file_store)
// is used up by a stream of the test's own. A real core on the JetStream
// store refuses the agent's ops with store-full, as the bbolt store's full
// disk does (agent.TestCoreStoreFull), not internal; the agent keeps them
// and backs off, and once the test purges its stream every op arrives by
// itself, exactly once and byte for byte.
func TestJetStreamFull(t *testing.T) {
	srv := natstest.Run(t, func(o *server.Options) { o.JetStreamMaxStore = 8 << 20 })
	f, c, a := startStored(t, srv)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fill := fillJetStream(ctx, t, srv)

	f.addEvents(a, 8, 48<<10)
	testutil.WaitFor(t, 30*time.Second, "the agent to say the core refuses for want of room", func() bool {
		st, err := a.Status("core")
		return err == nil && st.CoreRefusing != nil
	})
	st, _ := a.Status("core")
	if r := st.CoreRefusing; r.Code != "store-full" {
		t.Fatalf("core_refusing %+v, want store-full", r)
	}
	n0 := c.srv.Stats().OpsNacked
	time.Sleep(3 * time.Second) // a window to count the core's refusals in, not a wait for an event
	cs := c.srv.Stats()
	t.Logf("JetStream full: %d refusals in 3 s; core stats: store full %v, %d refused for want of room", cs.OpsNacked-n0, cs.StoreFull, cs.StoreFullRefusals)
	if cs.OpsNacked-n0 > 8+5 {
		t.Errorf("%d refusals in 3 s for 8 queued ops: the agent does not back off", cs.OpsNacked-n0)
	}
	if !cs.StoreFull || cs.StoreFullRefusals == 0 {
		t.Errorf("the core's stats do not say its store is full: %+v", cs)
	}

	if err := fill.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	f.waitDrained(a)
	f.verify()
	if c.srv.Stats().StoreFull {
		t.Error("the core still says its store is full once it stored again")
	}
}

// TestStreamLimitAgentHolds: an operator gives the events stream a
// max_bytes with room for two more of the agent's events. A real core
// refuses the ops past it with store-full and says which stream and limit
// (Room); the agent holds them (core_refusing) and nothing stored goes;
// once the operator raises the limit the agent drains by itself and every
// op is stored exactly once, byte for byte.
func TestStreamLimitAgentHolds(t *testing.T) {
	srv := natstest.Run(t)
	f, c, a := startStored(t, srv)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, js := natstest.Connect(t, srv.URL())
	name := c.store.n.stream(streamEvents)
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	limit := int64(st.CachedInfo().State.Bytes) + 100<<10
	setMaxBytes(ctx, t, js, name, limit)

	f.addEvents(a, 8, 48<<10)
	testutil.WaitFor(t, 30*time.Second, "the agent to say the core refuses for want of room", func() bool {
		st, err := a.Status("core")
		return err == nil && st.CoreRefusing != nil
	})
	if r, _ := a.Status("core"); r.CoreRefusing.Code != "store-full" {
		t.Fatalf("core_refusing %+v, want store-full", r.CoreRefusing)
	}
	if cs := c.srv.Stats(); !cs.StoreFull || cs.StoreFullRefusals == 0 {
		t.Errorf("the core's stats do not say its store is full: %+v", cs)
	}
	room := c.store.Room()
	t.Logf("room: %+v", room)
	if !strings.Contains(room.Where, name+" (max_bytes") || !strings.Contains(room.Action, "nats stream edit") {
		t.Errorf("Room %+v does not name stream %s at its max_bytes and what to do", room, name)
	}
	evs, err := c.store.Events(f.pki.AgentName, 0, 0)
	if err != nil || len(evs) < 3 {
		t.Errorf("%d events stored while the stream is at its limit, want the 3 stored before it and more: %v", len(evs), err)
	}

	setMaxBytes(ctx, t, js, name, -1)
	f.waitDrained(a)
	f.verify()
}

// TestJetStreamFullStateOps: once JetStream is full, a small state op
// that reaches the store through Apply (as ApplyWholeOps applies the state
// ops of a stream of several, docs/wire.md "Several ops per stream") is
// refused with core.ErrStoreFull, as BeginPartial, WritePartial and
// CommitPartial refuse it, so that the core answers store-full and not
// internal; once there is room the same ops are stored.
func TestJetStreamFullStateOps(t *testing.T) {
	srv := natstest.Run(t, func(o *server.Options) { o.JetStreamMaxStore = 8 << 20 })
	s := openTest(t, srv.URL(), core.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fill := fillJetStream(ctx, t, srv)
	data := storetest.Payload(1, 512)
	one := storetest.Header(storetest.OpID(1), edgesync.StateOp, "k1", data)
	if _, err := s.Apply("a", one, bytes.NewReader(data)); !errors.Is(err, core.ErrStoreFull) {
		t.Errorf("Apply of a state op on a full JetStream: %v, want core.ErrStoreFull", err)
	}
	two := storetest.Header(storetest.OpID(2), edgesync.StateOp, "k2", data)
	res := s.ApplyWholeOps("a", []core.WholeOp{{Header: one, Data: data}, {Header: two, Data: data}})
	for i, r := range res {
		if !errors.Is(r.Err, core.ErrStoreFull) {
			t.Errorf("ApplyWholeOps, state op %d on a full JetStream: %v, want core.ErrStoreFull", i, r.Err)
		}
	}
	if err := fill.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	for i, r := range s.ApplyWholeOps("a", []core.WholeOp{{Header: one, Data: data}, {Header: two, Data: data}}) {
		if r.Err != nil || r.Result.Duplicate {
			t.Errorf("state op %d once JetStream has room: %+v, %v; want stored", i, r.Result, r.Err)
		}
	}
}

// startStored starts a core on srv and an agent, which stores three
// events of 48 KiB through it.
func startStored(t *testing.T, srv *natstest.Server) (*fleet, *testCore, *agent.Agent) {
	f := newFleet(t, []string{srv.URL()})
	c := f.startCore("c1", 1)
	a := f.startAgent(c.addr)
	f.addEvents(a, 3, 48<<10)
	f.waitDrained(a)
	return f, c, a
}

// addEvents hands the agent n events of size bytes on key "log".
func (f *fleet) addEvents(a *agent.Agent, n, size int) {
	f.t.Helper()
	for range n {
		data := storetest.Payload(uint64(len(f.ops)+1), size)
		op, err := a.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: "log", Kind: edgesync.EventOp,
			Priority: edgesync.Normal, Payload: bytes.NewReader(data)})
		if err != nil {
			f.t.Fatal(err)
		}
		f.ops = append(f.ops, fleetOp{id: op.ID, kind: edgesync.EventOp, key: "log", data: data})
	}
}

// fillJetStream uses up srv's JetStream storage (8 MiB) with a stream of
// its own, which it returns: purged, it gives the room back.
func fillJetStream(ctx context.Context, t *testing.T, srv *natstest.Server) jetstream.Stream {
	t.Helper()
	_, js := natstest.Connect(t, srv.URL())
	fill, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "FILL", Subjects: []string{"fill"}, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	block := make([]byte, 64<<10)
	var full error
	for i := 0; i < 1000 && full == nil; i++ {
		_, full = js.Publish(ctx, "fill", block)
	}
	if !noRoom(full) {
		t.Fatalf("filling JetStream's 8 MiB: %v, want JetStream's answer for no room", full)
	}
	t.Logf("JetStream full: %v", full)
	return fill
}

// TestStreamLimitLosesNothing: an operator gives the events stream, or
// the data stream that holds large ops' chunks, a max_bytes (`nats stream
// edit --max-bytes`), and more events arrive than it holds. Every op the
// store acknowledged must still be there, byte for byte; the ops it has
// no room for are refused with core.ErrStoreFull (the agent keeps them);
// and once the operator raises the limit, every op sent again is stored
// exactly once: the acknowledged ones come back as duplicates. On one
// replica (an applied entry, then the event), with batches (the event and
// its marker as one atomic batch), and on a 3-node cluster with 3
// replicas, where the batch is checked by the stream's leader before it is
// replicated.
func TestStreamLimitLosesNothing(t *testing.T) {
	srv := natstest.Run(t)
	for _, batches := range []bool{false, true} {
		mode := "two-writes"
		if batches {
			mode = "batches"
		}
		t.Run(mode+"/events", func(t *testing.T) {
			testStreamLimit(t, []string{srv.URL()}, nil, batches, streamEvents, 4<<10)
		})
		t.Run(mode+"/data", func(t *testing.T) {
			testStreamLimit(t, []string{srv.URL()}, nil, batches, streamData, 24<<10)
		})
	}
	c := natstest.RunCluster(t, 3)
	t.Run("replicas-3/events", func(t *testing.T) {
		testStreamLimit(t, c.URLs(), c, true, streamEvents, 4<<10)
	})
	// Until a scan waited for its consumer's node to catch up with the
	// leader (scan.go), a large op's commit here could miss the chunks it
	// had just written, limit or none (TestReplicatedReadsWhatItWrote).
	t.Run("replicas-3/data", func(t *testing.T) {
		testStreamLimit(t, c.URLs(), c, true, streamData, 24<<10)
	})
}

// testStreamLimit fills the stream `what` of a store on urls (those of
// cluster, with 3 replicas, if not nil) with events of size bytes each
// under a max_bytes of 16 of them.
func testStreamLimit(t *testing.T, urls []string, cluster *natstest.Cluster, batches bool, what string, size int) {
	replicas := 1
	if cluster != nil {
		replicas = 3
	}
	s := openLimitTest(t, urls, replicas, batches)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, js := natstest.Connect(t, urls...)
	name := s.n.stream(what)
	limit := int64(16 * size)
	testLimit(t, s, cluster, size, limitCase{
		what:   fmt.Sprintf("%s's max_bytes %d", name, limit),
		says:   "stream " + name + " is at its max_bytes",
		room:   "stream " + name + " (max_bytes",
		stream: name,
		set: func(on bool) {
			setMaxBytes(ctx, t, js, name, map[bool]int64{true: limit, false: -1}[on])
		},
	})
}

// openLimitTest opens a store for a limit test: ops over 8 KiB are
// chunked, in chunks of 8 KiB.
func openLimitTest(t *testing.T, urls []string, replicas int, batches bool) *Store {
	return openWith(t, Config{Config: core.Config{InlineMax: 8 << 10, ChunkSize: 8 << 10}, URLs: urls, Replicas: replicas,
		Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1, forceBatches: batches})
}

// limitCase is a limit a test sets on JetStream and lifts again.
type limitCase struct {
	what   string        // the limit, for messages
	says   string        // what the first refusal's error says
	room   string        // what Room's Where says once it is reached
	stream string        // the stream the ops fill (caughtUp)
	set    func(on bool) // sets the limit, or lifts it
}

// testLimit sends 40 events of size bytes each into s under l: those
// acknowledged must be held and the rest refused with core.ErrStoreFull;
// once l is lifted, every op sent again is stored once, byte for byte,
// the acknowledged ones as duplicates.
func testLimit(t *testing.T, s *Store, cluster *natstest.Cluster, size int, l limitCase) {
	const agent, ops = "ship-7", 40
	l.set(true)
	all := make([]sent, ops)
	acked, refused := 0, 0
	for i := range all {
		data := storetest.Payload(uint64(i+1), size)
		all[i] = sent{n: i + 1, hdr: storetest.Header(storetest.OpID(uint64(i+1)), edgesync.EventOp, "log", data), data: data}
		_, err := s.Apply(agent, all[i].hdr, bytes.NewReader(data))
		switch {
		case err == nil:
			all[i].acked = true
			acked++
		case errors.Is(err, core.ErrStoreFull):
			refused++
			if refused == 1 {
				t.Logf("first refusal, op %d: %v", i+1, err)
				if msg := err.Error(); !strings.Contains(msg, l.says) || !strings.Contains(msg, "raise it") {
					t.Errorf("the refusal %q does not say %q and what to do", msg, l.says)
				}
			}
		default:
			t.Fatalf("op %d under %s: %v; want it stored or refused with core.ErrStoreFull", i+1, l.what, err)
		}
	}
	t.Logf("%d ops of %d bytes under %s: %d acknowledged, %d refused", ops, size, l.what, acked, refused)

	caughtUp(t, cluster, l.stream)
	var held []sent
	for _, op := range all {
		if op.acked {
			held = append(held, op)
		}
	}
	checkEventsOnce(t, s, agent, held, "acknowledged under "+l.what)
	if r := s.Room(); !strings.Contains(r.Where, l.room) || r.Free < 0 {
		t.Errorf("Room once %s is reached: %+v; want it to say %q and the room left", l.what, r, l.room)
	}
	if refused == 0 {
		t.Errorf("%d ops of %d bytes under %s: none refused", ops, size, l.what)
	}

	// The operator raises the limit; the agent sends every op again.
	l.set(false)
	var again []int
	for i, op := range all {
		res, err := s.Apply(agent, op.hdr, bytes.NewReader(op.data))
		if err != nil {
			t.Fatalf("op %d sent again once the limit is raised: %v", i+1, err)
		}
		if op.acked && !res.Duplicate {
			again = append(again, i+1)
		}
	}
	if len(again) > 0 {
		t.Errorf("ops %v, acknowledged before, were stored again when sent again: their applied markers or entries are gone", again)
	}
	caughtUp(t, cluster, l.stream)
	checkEventsOnce(t, s, agent, all, "sent again once the limit was raised")
}

// TestAccountLimitLosesNothing: the account's JetStream storage is
// limited to what it holds and 64 KiB more. Events past it are refused
// with core.ErrStoreFull (10002, "resource limits exceeded for account"),
// Room names the account's storage, and once the limit is lifted every
// op sent again is stored once.
func TestAccountLimitLosesNothing(t *testing.T) {
	srv := natstest.Run(t)
	s := openLimitTest(t, []string{srv.URL()}, 1, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, js := natstest.Connect(t, srv.URL())
	testLimit(t, s, nil, 4<<10, limitCase{
		what:   "the account's max_store",
		says:   "JetStream's storage is used up",
		room:   "the account's JetStream storage",
		stream: s.n.stream(streamEvents),
		set: func(on bool) {
			limit := int64(-1)
			if on {
				ai, err := js.AccountInfo(ctx)
				if err != nil {
					t.Fatal(err)
				}
				limit = int64(ai.Store) + 64<<10
			}
			err := srv.GlobalAccount().UpdateJetStreamLimits(map[string]server.JetStreamAccountLimits{
				"": {MaxMemory: -1, MaxStore: limit, MaxStreams: -1, MaxConsumers: -1}})
			if err != nil {
				t.Fatal(err)
			}
		},
	})
}

// checkEventsOnce fails t unless each of ops is one of agent's events in
// s, byte for byte; what says which ops they are.
func checkEventsOnce(t *testing.T, s *Store, agent string, ops []sent, what string) {
	t.Helper()
	evs, count := storetest.EventsByOp(t, s, agent)
	seq := map[edgesync.OpID]uint64{}
	for _, e := range evs {
		seq[e.OpID] = e.Seq
	}
	var notOnce []string
	var bad []int
	var firstErr error
	for _, op := range ops {
		if n := count[op.hdr.OpID]; n != 1 {
			notOnce = append(notOnce, fmt.Sprintf("%d (%d times)", op.n, n))
			continue
		}
		_, o, err := s.EventData(agent, seq[op.hdr.OpID])
		var got bytes.Buffer
		if err == nil {
			_, err = got.ReadFrom(o)
		}
		if err != nil || !bytes.Equal(got.Bytes(), op.data) {
			bad = append(bad, op.n)
			if firstErr == nil {
				firstErr = fmt.Errorf("%d of %d bytes read: %v", got.Len(), len(op.data), err)
			}
		}
	}
	if len(notOnce) > 0 {
		t.Errorf("%d of %d ops %s are not stored exactly once: %v", len(notOnce), len(ops), what, notOnce)
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d events of ops %s are not read back as sent: %v; the first: %v", len(bad), len(ops), what, bad, firstErr)
	}
}

// sent is an op a test sent to a store, and whether it was acknowledged.
type sent struct {
	n     int // from 1, in the order sent
	hdr   core.PartialHeader
	data  []byte
	acked bool
}

// caughtUp waits until every node of cluster (if not nil) holds the
// stream's last message: the store's scans read from a consumer that may
// sit on any of them.
func caughtUp(t *testing.T, cluster *natstest.Cluster, stream string) {
	t.Helper()
	if cluster == nil {
		return
	}
	testutil.WaitFor(t, 30*time.Second, "every node to hold the last message of stream "+stream, func() bool {
		var last []uint64
		for _, n := range cluster.Nodes {
			jsz, err := n.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
			if err != nil {
				return false
			}
			for _, a := range jsz.AccountDetails {
				for _, st := range a.Streams {
					if st.Name == stream {
						last = append(last, st.State.LastSeq)
					}
				}
			}
		}
		return len(last) == len(cluster.Nodes) && !slices.ContainsFunc(last, func(l uint64) bool { return l != last[0] })
	})
}

// setMaxBytes sets stream name's max_bytes as an operator would with
// `nats stream edit name --max-bytes`: every other field as it is.
func setMaxBytes(ctx context.Context, t *testing.T, js jetstream.JetStream, name string, limit int64) {
	t.Helper()
	setLimit(ctx, t, js, name, func(c *jetstream.StreamConfig) { c.MaxBytes = limit })
}

// setLimit changes stream name's config as an operator would with `nats
// stream edit`.
func setLimit(ctx context.Context, t *testing.T, js jetstream.JetStream, name string, change func(*jetstream.StreamConfig)) {
	t.Helper()
	cfg := streamConfig(ctx, t, js, name)
	change(&cfg)
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
}

// streamConfig is stream name's config as the server has it.
func streamConfig(ctx context.Context, t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().Config
}

// TestOpenKeepsLimitsDiscardsNew: a store created by an earlier version
// has its events and data streams discard old messages at a limit, and an
// operator set limits on them and on a bucket. A core of this version
// opening it keeps every limit and makes each refuse new messages there
// instead (docs/jetstream.md, "When JetStream is full"), where before it
// reset them to none at each start.
func TestOpenKeepsLimitsDiscardsNew(t *testing.T) {
	srv := natstest.Run(t)
	cfg := Config{URLs: []string{srv.URL()}, Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1}
	s := openWith(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, js := natstest.Connect(t, srv.URL())
	events, data, applied := s.n.stream(streamEvents), s.n.stream(streamData), kvStream(s.n.bucket(bucketApplied))
	set := map[string]func(*jetstream.StreamConfig){
		events: func(c *jetstream.StreamConfig) {
			c.Discard, c.MaxBytes, c.MaxMsgs, c.MaxMsgsPerSubject = jetstream.DiscardOld, 1<<20, 1000, 50
		},
		data:    func(c *jetstream.StreamConfig) { c.Discard, c.MaxBytes = jetstream.DiscardOld, 4<<20 },
		applied: func(c *jetstream.StreamConfig) { c.MaxBytes = 2 << 20 },
	}
	for name, change := range set {
		setLimit(ctx, t, js, name, change) // as an earlier version and an operator left it
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	openWith(t, cfg)
	for name, change := range set {
		got := streamConfig(ctx, t, js, name)
		want := got
		change(&want)
		want.Discard = jetstream.DiscardNew
		want.DiscardNewPerSubject = want.MaxMsgsPerSubject > 0 && name == events
		if got.Discard != want.Discard || got.DiscardNewPerSubject != want.DiscardNewPerSubject || got.MaxBytes != want.MaxBytes ||
			got.MaxMsgs != want.MaxMsgs || got.MaxMsgsPerSubject != want.MaxMsgsPerSubject {
			t.Errorf("stream %s once a core opened it: discard %v (new per subject %v), max_bytes %d, max_msgs %d, max_msgs_per_subject %d; "+
				"want discard %v (%v), the limits kept: %d, %d, %d", name, got.Discard, got.DiscardNewPerSubject, got.MaxBytes, got.MaxMsgs,
				got.MaxMsgsPerSubject, want.Discard, want.DiscardNewPerSubject, want.MaxBytes, want.MaxMsgs, want.MaxMsgsPerSubject)
		}
	}
}

// TestOwnerMarkerRefused: the data stream has room for a large op's
// chunks but not for the owner marker written after its commit (max_msgs
// one short). The op is visible by then; whatever the store answers, its
// data must stay, and once the limit is raised the op sent again is a
// duplicate (or stored, if the first answer was a refusal before the
// commit) and reads back byte for byte.
func TestOwnerMarkerRefused(t *testing.T) {
	srv := natstest.Run(t)
	for _, batches := range []bool{false, true} {
		t.Run(fmt.Sprintf("batches=%v", batches), func(t *testing.T) {
			const agent = "ship-7"
			s := openWith(t, Config{Config: core.Config{InlineMax: 8 << 10, ChunkSize: 8 << 10}, URLs: []string{srv.URL()},
				Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1, forceBatches: batches})
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, js := natstest.Connect(t, srv.URL())
			name := s.n.stream(streamData)
			setLimit(ctx, t, js, name, func(c *jetstream.StreamConfig) { c.MaxMsgs = 3 }) // the chunks, not the marker
			data := storetest.Payload(1, 24<<10)
			op := sent{n: 1, hdr: storetest.Header(storetest.OpID(1), edgesync.EventOp, "log", data), data: data}
			_, err := s.Apply(agent, op.hdr, bytes.NewReader(data))
			t.Logf("apply with room for the chunks only: %v", err)
			if err != nil && !errors.Is(err, core.ErrStoreFull) {
				t.Fatalf("apply: %v; want it stored or refused with core.ErrStoreFull", err)
			}
			setLimit(ctx, t, js, name, func(c *jetstream.StreamConfig) { c.MaxMsgs = -1 })
			res, err := s.Apply(agent, op.hdr, bytes.NewReader(data))
			if err != nil {
				t.Fatalf("the op sent again once the limit is raised: %v", err)
			}
			t.Logf("sent again: duplicate %v", res.Duplicate)
			checkEventsOnce(t, s, agent, []sent{op}, "sent again once the limit was raised")
			if ps, err := s.Partials(agent); err != nil || len(ps) != 0 {
				t.Errorf("partial ops left once the op was sent again: %+v, %v", ps, err)
			}
		})
	}
}

// TestDiscardOldSetBack: someone sets the events and data streams to
// discard old (`nats stream edit --discard old`, or a core of an earlier
// version starting). At its next sweep interval the store sets them back
// to discard new, so that a limit refuses rather than drops.
func TestDiscardOldSetBack(t *testing.T) {
	srv := natstest.Run(t)
	s := openWith(t, Config{URLs: []string{srv.URL()}, Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: 100 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, js := natstest.Connect(t, srv.URL())
	for _, name := range []string{s.n.stream(streamEvents), s.n.stream(streamData)} {
		setLimit(ctx, t, js, name, func(c *jetstream.StreamConfig) { c.Discard = jetstream.DiscardOld })
		testutil.WaitFor(t, 30*time.Second, "the store to set stream "+name+" back to discard new", func() bool {
			return streamConfig(ctx, t, js, name).Discard == jetstream.DiscardNew
		})
	}
}
