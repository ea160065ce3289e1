package core

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
)

// TestJournalFoldSkipsADamagedAgent: a damaged record in one agent's
// buckets (here the summary its events supersede) stops the fold of that
// agent's journal entries only. Before the journal, such a record failed
// that agent's ops on the key and nothing else; a fold of the whole
// journal that fails on it must not keep the other agents' events in the
// journal (Stats, Sweep and the background fold failing for every agent,
// the journal growing) nor the store from opening again. Nothing
// acknowledged is lost: the damaged agent's entry stays in the journal,
// its reads say what is damaged, its later small events are refused as
// its ops were before the journal, and once the record is repaired the
// entry folds with the sequence number it was given.
func TestJournalFoldSkipsADamagedAgent(t *testing.T) {
	s, path := openTest(t, Config{foldOff: true})
	for i, agent := range []string{"a", "b"} {
		d := payload(uint64(100+i), 10)
		mustApply(t, s, agent, hdrFor(opID(uint64(100+i)), edgesync.EventOp, "log", d), d) // creates its buckets
	}
	if err := s.PutSummary("a", Summary{OpID: opID(50), Key: "log", Size: 10, Hash: sha256.Sum256(nil), Bytes: []byte("s")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bktAgents).Bucket([]byte("a")).Bucket(bktSumm).Put([]byte("log"), []byte{0xff})
	})
	s, err := Open(path, Config{foldOff: true})
	if err != nil {
		t.Fatalf("open with a damaged summary: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })

	// a's event on the damaged summary's key goes to the journal, acknowledged.
	da := payload(1, 40)
	ha := hdrFor(opID(1), edgesync.EventOp, "log", da)
	if res, err := s.ApplyWhole("a", ha, da); err != nil || res.Seq != 2 {
		t.Fatalf("a's small event: %+v, %v; want it journaled as seq 2", res, err)
	}
	var bData [][]byte
	for i := range 5 {
		d := payload(uint64(200+i), 50)
		mustApply(t, s, "b", hdrFor(opID(uint64(200+i)), edgesync.EventOp, "log", d), d)
		bData = append(bData, d)
	}
	if err := s.Fold(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("fold: %v, want ErrCorrupt for a's entry", err)
	}
	if n := journalLen(t, s); n != 1 {
		t.Fatalf("%d journal entries after a fold, want 1 (a's): b's stay in the journal behind a's damage", n)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatalf("stats with one agent's fold failing: %v", err)
	}
	if b := st.ByAgent["b"]; b.Events != 6 || b.Applied != 6 {
		t.Fatalf("b's stats %+v, want 6 events, 6 applied", b)
	}
	if a := st.ByAgent["a"]; a.Events != 2 || a.Bytes != 50 {
		t.Fatalf("a's stats %+v: want its journaled event counted (2 events, 50 bytes)", a)
	}
	if _, err := s.Sweep(); err != nil {
		t.Fatalf("sweep with one agent's fold failing: %v", err)
	}
	// a's next small event is refused, as before the journal: it would
	// be acknowledged and then held in the journal.
	d2 := payload(2, 30)
	if res, err := s.ApplyWhole("a", hdrFor(opID(2), edgesync.EventOp, "log", d2), d2); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a's event after its fold failed: %+v, %v; want ErrCorrupt", res, err)
	}
	if _, err := s.Events("a", 0, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a's events: %v, want ErrCorrupt (its journaled event cannot be folded)", err)
	}
	if res, err := s.ApplyWhole("a", ha, da); err == nil && !res.Duplicate {
		t.Fatalf("resend of a's journaled op: %+v applied again", res)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Config{foldOff: true})
	if err != nil {
		t.Fatalf("reopen with a's entry unfoldable: %v", err)
	}
	evs, err := s.Events("b", 0, 0)
	if err != nil || len(evs) != 6 {
		t.Fatalf("b's events after reopen: %d, %v; want 6", len(evs), err)
	}
	for i, d := range bData {
		if _, o, err := s.EventData("b", evs[i+1].Seq); err != nil || !bytes.Equal(readAll(t, o), d) {
			t.Fatalf("b's event %d: %v or other bytes", evs[i+1].Seq, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Repaired (the damaged summary removed), a's acknowledged event folds
	// with its sequence number.
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bktAgents).Bucket([]byte("a")).Bucket(bktSumm).Delete([]byte("log"))
	})
	s = openStore(t, path)
	evs, err = s.Events("a", 0, 0)
	if err != nil || len(evs) != 2 || evs[1].Seq != 2 || evs[1].OpID != ha.OpID {
		t.Fatalf("a's events after repair: %+v, %v; want op %s as seq 2", evs, err, ha.OpID)
	}
	if _, o, err := s.EventData("a", 2); err != nil || !bytes.Equal(readAll(t, o), da) {
		t.Fatalf("a's journaled event after repair: %v or other bytes", err)
	}
}
