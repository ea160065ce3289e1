package jsstore

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	edgesync "github.com/edge-sync/edge-sync"
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
	f := newFleet(t, []string{srv.URL()})
	c := f.startCore("c1", 1)
	a := f.startAgent(c.addr)
	add := func(n int) {
		for range n {
			data := storetest.Payload(uint64(len(f.ops)+1), 48<<10)
			op, err := a.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: "log", Kind: edgesync.EventOp,
				Priority: edgesync.Normal, Payload: bytes.NewReader(data)})
			if err != nil {
				t.Fatal(err)
			}
			f.ops = append(f.ops, fleetOp{id: op.ID, kind: edgesync.EventOp, key: "log", data: data})
		}
	}
	add(3)
	f.waitDrained(a)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fill := fillJetStream(ctx, t, srv)

	add(8)
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
	f := newFleet(t, []string{srv.URL()})
	c := f.startCore("c1", 1)
	a := f.startAgent(c.addr)
	add := func(n int) {
		for range n {
			data := storetest.Payload(uint64(len(f.ops)+1), 48<<10)
			op, err := a.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: "log", Kind: edgesync.EventOp,
				Priority: edgesync.Normal, Payload: bytes.NewReader(data)})
			if err != nil {
				t.Fatal(err)
			}
			f.ops = append(f.ops, fleetOp{id: op.ID, kind: edgesync.EventOp, key: "log", data: data})
		}
	}
	add(3)
	f.waitDrained(a)

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

	add(8)
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
