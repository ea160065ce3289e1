package jsstore

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
)

// TestReplicatedReadsWhatItWrote: on a 3-node cluster with 3 replicas a
// core reads what it has just written. A large op's commit reads its
// chunks back to check their SHA-256 (docs/jetstream.md, "Exactly once"),
// and an application's read right after an acknowledgement (Get, Events:
// the admin API's and `core get/tail`'s path) must show the op. A scan's
// consumer may be placed on a follower that has not stored the newest
// messages yet; the store must wait for it or read from the leader.
func TestReplicatedReadsWhatItWrote(t *testing.T) {
	cl := natstest.RunCluster(t, 3)
	s := openWith(t, Config{Config: core.Config{InlineMax: 8 << 10, ChunkSize: 8 << 10}, URLs: cl.URLs(), Replicas: 3,
		Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1})
	const (
		agent = "ship-7"
		ops   = 30               // each kind; the bug showed within a few
		bound = 90 * time.Second // for the whole loop
	)
	deadline := time.Now().Add(bound)
	n := uint64(0)
	for i := range ops {
		if time.Now().After(deadline) {
			t.Fatalf("%d rounds of %d took over %v", i, ops, bound)
		}
		// A large state op: its commit reads its chunks back; then the
		// key's current version, read in full.
		n++
		big := storetest.Payload(n, 24<<10)
		key := fmt.Sprintf("big-%d", i)
		if _, err := s.Apply(agent, storetest.Header(storetest.OpID(n), edgesync.StateOp, key, big), bytes.NewReader(big)); err != nil {
			t.Fatalf("round %d: apply of a 24 KiB state op (3 chunks): %v", i, err)
		}
		storetest.CheckObject(t, s, agent, key, big, fmt.Sprintf("right after its ack (round %d)", i))

		// A large event: its commit, then its data by sequence number.
		n++
		bigEv := storetest.Payload(n, 24<<10)
		res, err := s.Apply(agent, storetest.Header(storetest.OpID(n), edgesync.EventOp, "log", bigEv), bytes.NewReader(bigEv))
		if err != nil {
			t.Fatalf("round %d: apply of a 24 KiB event (3 chunks): %v", i, err)
		}
		_, o, err := s.EventData(agent, res.Seq)
		if err != nil {
			t.Fatalf("round %d: event %d right after its ack: %v", i, res.Seq, err)
		}
		if got, err := io.ReadAll(io.NewSectionReader(o, 0, o.Size())); err != nil || !bytes.Equal(got, bigEv) {
			t.Fatalf("round %d: event %d right after its ack: read %d of %d bytes: %v", i, res.Seq, len(got), len(bigEv), err)
		}

		// A small event, then the agent's events as `core tail` lists them.
		n++
		small := storetest.Payload(n, 100)
		id := storetest.OpID(n)
		if _, err := s.Apply(agent, storetest.Header(id, edgesync.EventOp, "log", small), bytes.NewReader(small)); err != nil {
			t.Fatalf("round %d: apply of a small event: %v", i, err)
		}
		evs, byOp := storetest.EventsByOp(t, s, agent)
		if byOp[id] != 1 {
			t.Fatalf("round %d: Events right after the ack of event op %s lists it %d times, want 1 (%d events listed, %d acknowledged)",
				i, id, byOp[id], len(evs), 2*(i+1))
		}

		// A new version of one key, then the keys as `core ls` lists
		// them: the newest version, once.
		n++
		id = storetest.OpID(n)
		if _, err := s.Apply(agent, storetest.Header(id, edgesync.StateOp, "cur", small), bytes.NewReader(small)); err != nil {
			t.Fatalf("round %d: apply of a small state op: %v", i, err)
		}
		vs, err := s.Keys(agent, "cur", 0)
		if err != nil {
			t.Fatalf("round %d: Keys right after an ack: %v", i, err)
		}
		if len(vs) != 1 || vs[0].OpID != id || vs[0].Version != uint64(i+1) {
			var got []string
			for _, v := range vs {
				got = append(got, fmt.Sprintf("version %d (op %s)", v.Version, v.OpID))
			}
			t.Fatalf("round %d: Keys right after the ack of version %d (op %s) of key cur lists %v, want that version once", i, i+1, id, got)
		}
	}
}
