package jsstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestUpgradeFromAppliedBucket opens a store with batches (as a
// replicated one) whose events stream was written without (events only,
// their applied entries in the applied bucket), as cores before batches
// or with one replica left it, and writes event ops as they did: the
// entry, then the event with the op ID as Nats-Msg-Id; and one entry
// whose event a crash cut off. After the upgrade the stream takes markers
// in atomic batches, a resend of an op applied before is a duplicate and
// stays one event, the cut-off op is applied once, and a second core
// opening later keeps the window. Opened without batches again (one
// replica), it finds the markers: every op stays a duplicate. A fresh
// store has no window: its events' commits never read the other index.
func TestUpgradeFromAppliedBucket(t *testing.T) {
	srv := natstest.Run(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	_, js := natstest.Connect(t, srv.URL())
	n := names{prefix}
	// The earlier layout's events stream.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: n.stream(streamEvents), Subjects: []string{n.subject(subjEvents) + ".>"},
		Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{URLs: []string{srv.URL()}, Prefix: prefix, SweepInterval: -1, forceBatches: true}
	s := openWith(t, cfg)
	if s.legacyUntil.Before(time.Now().Add(29 * 24 * time.Hour)) {
		t.Fatalf("legacy window ends %v, want dedup_retention (30 days) from now", s.legacyUntil)
	}
	info := s.events.CachedInfo()
	if !info.Config.AllowAtomicPublish || !info.Config.AllowMsgTTL || len(info.Config.Subjects) != 2 {
		t.Fatalf("events stream not upgraded: %+v", info.Config)
	}

	// Ops the earlier layout applied: entry and event; op 2's event was
	// cut off by a crash.
	const agent = "ship-7"
	var ops []struct {
		hdr  core.PartialHeader
		data []byte
	}
	for i := range 3 {
		d := storetest.Payload(uint64(i), 200)
		ops = append(ops, struct {
			hdr  core.PartialHeader
			data []byte
		}{storetest.Header(storetest.OpID(uint64(i+1)), edgesync.EventOp, "log", d), d})
	}
	for i, op := range ops {
		h := op.hdr
		rec, _ := json.Marshal(appliedRec{Kind: h.Kind, Key: h.Key, Size: h.Size, SHA256: h.Hash, At: time.Now(), Core: "old"})
		if _, err := s.applied.Create(ctx, agentKey(agent, h.OpID.String()), rec); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			continue
		}
		m := meta{agent: agent, key: h.Key, op: h.OpID, kind: h.Kind, priority: h.Priority, size: h.Size, hash: h.Hash, stored: time.Now()}
		if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: n.eventSubject(agent, h.Key), Header: m.header(), Data: op.data},
			jetstream.WithMsgID(agentKey(agent, h.OpID.String()))); err != nil {
			t.Fatal(err)
		}
	}

	// A second core, opened after the upgrade, keeps the window.
	s2 := openWith(t, cfg)
	if !s2.legacyUntil.Equal(s.legacyUntil) {
		t.Fatalf("second core's legacy window ends %v, want %v", s2.legacyUntil, s.legacyUntil)
	}
	for i, op := range ops {
		res, err := sendOp(s2, agent, op.hdr, op.data)
		if err != nil {
			t.Fatalf("resend of op %d: %v", i, err)
		}
		if res.Duplicate != (i < 2) {
			t.Errorf("resend of op %d: duplicate %v, want %v", i, res.Duplicate, i < 2)
		}
	}
	// And again, now that op 2 has its marker.
	for i, op := range ops {
		if res, err := sendOp(s, agent, op.hdr, op.data); err != nil || !res.Duplicate {
			t.Errorf("second resend of op %d: %+v, %v; want a duplicate", i, res, err)
		}
	}
	checkExactlyOnce(t, s, agent, ops)
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := st.ByAgent[agent].Applied; got != 4 {
		t.Errorf("applied count %d, want 4: three entries in the bucket and op 2's marker", got)
	}

	// Without batches again: the markers are found.
	cfg.forceBatches = false
	s3 := openWith(t, cfg)
	if s3.events.CachedInfo().Config.AllowAtomicPublish || !s3.markersLive() || s3.legacyUntil != s.legacyUntil {
		t.Fatalf("reopened without batches: atomic %v, markers until %v, legacy until %v",
			s3.events.CachedInfo().Config.AllowAtomicPublish, s3.markersUntil, s3.legacyUntil)
	}
	for i, op := range ops {
		if res, err := sendOp(s3, agent, op.hdr, op.data); err != nil || !res.Duplicate {
			t.Errorf("resend of op %d without batches: %+v, %v; want a duplicate", i, res, err)
		}
	}
	checkExactlyOnce(t, s3, agent, ops)

	// A fresh store has no windows, with batches or without.
	for _, batches := range []bool{false, true} {
		fresh := openWith(t, Config{URLs: []string{srv.URL()}, Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1, forceBatches: batches})
		if fresh.legacy() || fresh.markersLive() || fresh.events.CachedInfo().Config.AllowAtomicPublish != batches {
			t.Errorf("a fresh store (batches %v) has windows until %v, %v, or atomic publish %v", batches,
				fresh.legacyUntil, fresh.markersUntil, fresh.events.CachedInfo().Config.AllowAtomicPublish)
		}
	}
}

// TestRollingReplicasChange runs two cores on one store while its
// replicas go from 1 to 3 one core at a time, as a rolling restart does:
// core a, opened with one replica, still commits events with two writes
// after core b has opened the store with batches. An op b applied (its
// acknowledgement lost) and sent again to a is a duplicate: a, which
// opened before any marker existed, must not publish the event again.
func TestRollingReplicasChange(t *testing.T) {
	srv := natstest.Run(t)
	cfg := Config{URLs: []string{srv.URL()}, Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1}
	a := openWith(t, cfg)
	cfg.forceBatches = true
	b := openWith(t, cfg)
	const agent = "ship-9"
	d := storetest.Payload(7, 300)
	ops := []struct {
		hdr  core.PartialHeader
		data []byte
	}{{storetest.Header(storetest.OpID(1), edgesync.EventOp, "log", d), d}}
	if res, err := sendOp(b, agent, ops[0].hdr, d); err != nil || res.Duplicate {
		t.Fatalf("op at the core with batches: %+v, %v", res, err)
	}
	for i := range 2 {
		if res, err := sendOp(a, agent, ops[0].hdr, d); err != nil || !res.Duplicate {
			t.Errorf("resend %d at the core without batches: %+v, %v; want a duplicate", i, res, err)
		}
	}
	checkExactlyOnce(t, b, agent, ops)

	// Back to one replica, one core at a time: b, opened with batches,
	// fails its events' commits once the stream allows no batches.
	cfg.forceBatches = false
	c := openWith(t, cfg)
	d2 := storetest.Payload(8, 300)
	h2 := storetest.Header(storetest.OpID(2), edgesync.EventOp, "log", d2)
	if res, err := sendOp(b, agent, h2, d2); err == nil || !strings.Contains(err.Error(), "restart this core") {
		t.Fatalf("op at the core with batches after the stream lost them: %+v, %v; want an error that says to restart it", res, err)
	}
	if res, err := sendOp(c, agent, h2, d2); err != nil || res.Duplicate {
		t.Fatalf("op at the core without batches: %+v, %v", res, err)
	}
	checkExactlyOnce(t, c, agent, append(ops, struct {
		hdr  core.PartialHeader
		data []byte
	}{h2, d2}))
}

// TestCoreLeftWithoutBatchesStops runs a core opened with one replica on
// after another opened the store with batches: the other's legacy window
// (dedup_retention and an hour) covers the applied entries of a rolling
// restart, not those of a core left running for longer, whose resends
// the cores with batches would apply again once the window ends. The core
// left behind sees the change at its next sweep interval and refuses
// events, saying to restart it.
func TestCoreLeftWithoutBatchesStops(t *testing.T) {
	srv := natstest.Run(t)
	cfg := Config{URLs: []string{srv.URL()}, Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: 20 * time.Millisecond}
	a := openWith(t, cfg)
	cfg.forceBatches, cfg.SweepInterval = true, -1
	openWith(t, cfg)
	var last error
	n := uint64(0)
	testutil.WaitFor(t, 10*time.Second, "the core without batches to refuse events after the store took batches", func() bool {
		n++
		d := storetest.Payload(n, 100)
		_, last = sendOp(a, "ship-3", storetest.Header(storetest.OpID(n), edgesync.EventOp, "log", d), d)
		return last != nil && strings.Contains(last.Error(), "restart this core")
	})
}
