package core

import (
	"bytes"
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
)

// journalLen is the number of entries in s's journal bucket.
func journalLen(t testing.TB, s *Store) int {
	t.Helper()
	n := 0
	if err := s.viewTx(func(tx *bolt.Tx) error {
		n = tx.Bucket(bktJournal).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestJournalHoldsSmallEventsUntilARead: small events of an agent that
// has stored before go to the journal with the sequence numbers they
// keep; a resend is a duplicate with the same number before and after
// the fold; reads fold first and see every event byte-identical; state
// ops and large events take the agent's buckets at once.
func TestJournalHoldsSmallEventsUntilARead(t *testing.T) {
	s, _ := openTest(t, Config{foldOff: true})
	first := payload(0, 10)
	mustApply(t, s, "a", hdrFor(opID(100), edgesync.EventOp, "log", first), first) // creates a's buckets
	var hdrs []PartialHeader
	var data [][]byte
	// put applies n events of size bytes from op from on, kept for the
	// checks after the fold.
	put := func(n int, from uint64, size int) {
		for i := range uint64(n) {
			d := payload(from+i, size)
			h := hdrFor(opID(from+i), edgesync.EventOp, "log", d)
			mustApply(t, s, "a", h, d)
			hdrs, data = append(hdrs, h), append(data, d)
		}
	}
	for i := range 5 {
		d := payload(uint64(i+1), 100+i)
		h := hdrFor(opID(uint64(i+1)), edgesync.EventOp, "log", d)
		res := mustApply(t, s, "a", h, d)
		if res.Duplicate || res.Seq != uint64(i+2) {
			t.Fatalf("event %d: %+v, want seq %d", i, res, i+2)
		}
		hdrs, data = append(hdrs, h), append(data, d)
	}
	if n := journalLen(t, s); n != 5 {
		t.Fatalf("%d journal entries, want 5", n)
	}
	// A resend of an op in the journal.
	if res, err := s.ApplyWhole("a", hdrs[1], data[1]); err != nil || !res.Duplicate || res.Seq != 3 {
		t.Fatalf("resend of a journaled op: %+v, %v; want a duplicate of seq 3", res, err)
	}
	// The resend folded a's entries: its other paths see the journal's ops.
	if n := journalLen(t, s); n != 0 {
		t.Fatalf("%d journal entries after a resend, want 0", n)
	}
	put(3, 10, 50)
	big := payload(99, 5000) // over inlineDataMax: the agent's buckets, after its journal
	if res := mustApply(t, s, "a", hdrFor(opID(99), edgesync.EventOp, "log", big), big); res.Seq != 10 {
		t.Fatalf("large event after three journaled: seq %d, want 10", res.Seq)
	}
	if n := journalLen(t, s); n != 0 {
		t.Fatalf("%d journal entries after a large event, want 0", n)
	}
	put(2, 20, 60)
	if n := journalLen(t, s); n != 2 {
		t.Fatalf("%d journal entries, want 2", n)
	}
	evs, err := s.Events("a", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := journalLen(t, s); n != 0 || len(evs) != 12 {
		t.Fatalf("after Events: %d journal entries, %d events; want 0 and 12", n, len(evs))
	}
	bySeq := map[edgesync.OpID]uint64{}
	for i, e := range evs {
		if e.Seq != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i, e.Seq)
		}
		bySeq[e.OpID] = e.Seq
	}
	for i, h := range hdrs {
		_, o, err := s.EventData("a", bySeq[h.OpID])
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, o); !bytes.Equal(got, data[i]) {
			t.Fatalf("event of op %s reads %d bytes, want its %d", h.OpID, len(got), len(data[i]))
		}
		if res, err := s.ApplyWhole("a", h, data[i]); err != nil || !res.Duplicate || res.Seq != bySeq[h.OpID] {
			t.Fatalf("resend of folded op %s: %+v, %v; want a duplicate of seq %d", h.OpID, res, err, bySeq[h.OpID])
		}
	}
	st := agentStats(t, s, "a")
	if st.Events != 12 || st.Applied != 12 || st.Dedups != 1+int64(len(hdrs)) {
		t.Fatalf("stats %+v: want 12 events, 12 applied, %d dedups", st, 1+len(hdrs))
	}
}

// TestJournalRollbackRebuildsIndex: a transaction that wrote an op to the
// journal and then failed (as a group does when another change in it
// fails) leaves no trace of the op: sent again, it is applied, with the
// same sequence number.
func TestJournalRollbackRebuildsIndex(t *testing.T) {
	s, _ := openTest(t, Config{foldOff: true})
	d0 := payload(0, 10)
	mustApply(t, s, "a", hdrFor(opID(100), edgesync.EventOp, "log", d0), d0)
	d := payload(1, 100)
	h := hdrFor(opID(1), edgesync.EventOp, "log", d)
	boom := errors.New("boom")
	err := s.update(func(tx *bolt.Tx) error {
		ok, res, err := s.journalApply(tx, "a", h, d)
		if !ok || err != nil || res.Seq != 2 {
			t.Errorf("journalApply: %v, %+v, %v; want it journaled as seq 2", ok, res, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("update: %v, want boom", err)
	}
	if res := mustApply(t, s, "a", h, d); res.Duplicate || res.Seq != 2 {
		t.Fatalf("op after the rollback: %+v; want applied as seq 2", res)
	}
	if ok, err := s.Applied("a", h.OpID); err != nil || !ok {
		t.Fatalf("applied: %v, %v", ok, err)
	}
}

// TestJournalFoldAtOpen: what a store closed (or killed) with entries in
// its journal held is in the agents' buckets after Open.
func TestJournalFoldAtOpen(t *testing.T) {
	s, path := openTest(t, Config{foldOff: true})
	d0 := payload(0, 10)
	mustApply(t, s, "a", hdrFor(opID(100), edgesync.EventOp, "log", d0), d0)
	d := payload(1, 300)
	mustApply(t, s, "a", hdrFor(opID(1), edgesync.EventOp, "log", d), d)
	if n := journalLen(t, s); n != 1 {
		t.Fatalf("%d journal entries, want 1", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path)
	if n := journalLen(t, s); n != 0 {
		t.Fatalf("%d journal entries after Open, want 0", n)
	}
	_, o, err := s.EventData("a", 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, o); !bytes.Equal(got, d) {
		t.Fatalf("event 2 reads %d bytes, want %d", len(got), len(d))
	}
}

// TestJournalDamage: a damaged journal entry is ErrCorrupt at Open, with
// no panic, whatever part of it is damaged.
func TestJournalDamage(t *testing.T) {
	rec := journalRec{agent: "a", seq: 2, at: time.Unix(1_700_000_000, 0), data: payload(1, 20),
		hdr: hdrFor(opID(1), edgesync.EventOp, "log", payload(1, 20))}
	good := rec.encode()
	if got, err := decodeJournal(u64b(1), good); err != nil || !bytes.Equal(got.data, rec.data) || got.hdr != rec.hdr {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	wrongLen := journalRec{agent: "a", seq: 2, at: time.Unix(1_700_000_000, 0), data: payload(1, 19), hdr: rec.hdr}
	cases := map[string][]byte{
		"truncated":      good[:len(good)-5],
		"trailing bytes": append(append([]byte(nil), good...), 0),
		"record version": append([]byte{9}, good[1:]...),
		"data length":    wrongLen.encode(),
		"empty":          {},
	}
	for name, v := range cases {
		t.Run(name, func(t *testing.T) {
			s, path := openTest(t, Config{foldOff: true})
			d0 := payload(0, 10)
			mustApply(t, s, "a", hdrFor(opID(100), edgesync.EventOp, "log", d0), d0)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bktJournal).Put(u64b(1), v) })
			s2, err := Open(path, Config{})
			if err == nil {
				s2.Close()
				t.Fatal("store with a damaged journal entry opened")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("open: %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestFormat2OpensAndUpgrades opens a store of format 2 (no journal
// bucket): it reads as it was, gains the journal and the marker 3 at
// Open, and its small events then go to the journal.
func TestFormat2OpensAndUpgrades(t *testing.T) {
	s, path := openTest(t, Config{})
	ev, st := payload(1, 200), payload(2, 300)
	mustApply(t, s, "a", hdrFor(opID(1), edgesync.EventOp, "log", ev), ev)
	mustApply(t, s, "a", hdrFor(opID(2), edgesync.StateOp, "k", st), st)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bktJournal); err != nil {
			return err
		}
		return tx.Bucket(bktMeta).Put(keyFormat, u64b(2))
	})

	s, err := Open(path, Config{foldOff: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.viewTx(func(tx *bolt.Tx) error {
		if v := beU64(tx.Bucket(bktMeta).Get(keyFormat)); v != 3 || FormatVersion != 3 {
			t.Errorf("format marker after Open: %d (FormatVersion %d), want 3", v, FormatVersion)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, o, err := s.EventData("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, o); !bytes.Equal(got, ev) {
		t.Fatalf("format-2 event reads %d bytes, want %d", len(got), len(ev))
	}
	if _, got := mustGet(t, s, "a", "k"); !bytes.Equal(got, st) {
		t.Fatalf("format-2 version reads %d bytes, want %d", len(got), len(st))
	}
	ev2 := payload(3, 100)
	if res := mustApply(t, s, "a", hdrFor(opID(3), edgesync.EventOp, "log", ev2), ev2); res.Seq != 2 {
		t.Fatalf("new event: seq %d, want 2", res.Seq)
	}
	if n := journalLen(t, s); n != 1 {
		t.Fatalf("%d journal entries after a small event, want 1", n)
	}
}

// TestJournalQuotaAndRetention: an agent's bytes in the journal count
// against its quota, and the fold applies the event log's retention as
// the ops one by one would have.
func TestJournalQuotaAndRetention(t *testing.T) {
	s, _ := openTest(t, Config{foldOff: true, Quota: 1000, EventMaxCount: 3})
	d := payload(0, 200)
	mustApply(t, s, "a", hdrFor(opID(100), edgesync.EventOp, "log", d), d)
	for i := range 3 {
		d := payload(uint64(i+1), 200)
		mustApply(t, s, "a", hdrFor(opID(uint64(i+1)), edgesync.EventOp, "log", d), d)
	}
	if n := journalLen(t, s); n != 3 {
		t.Fatalf("%d journal entries, want 3", n)
	}
	// 800 bytes stored or journaled: 300 more are over the quota of 1000,
	// but retention keeps 3 events of 200 bytes, so the ordinary path,
	// which folds first, takes the op.
	d5 := payload(5, 300)
	if res := mustApply(t, s, "a", hdrFor(opID(5), edgesync.EventOp, "log", d5), d5); res.Seq != 5 {
		t.Fatalf("op over the journal's count of the quota: seq %d, want 5", res.Seq)
	}
	if n := journalLen(t, s); n != 0 {
		t.Fatalf("%d journal entries after an op the quota sent the ordinary way, want 0", n)
	}
	big := payload(6, 900)
	if _, err := s.ApplyWhole("a", hdrFor(opID(6), edgesync.EventOp, "log", big), big); !errors.Is(err, ErrQuota) {
		t.Fatalf("op over the quota: %v, want ErrQuota", err)
	}
	for i := range 5 {
		d := payload(uint64(i+10), 10)
		mustApply(t, s, "a", hdrFor(opID(uint64(i+10)), edgesync.EventOp, "log", d), d)
	}
	evs, err := s.Events("a", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	st := agentStats(t, s, "a")
	if len(evs) != 3 || evs[0].Seq != 8 || st.Events != 3 || st.Evicted != 7 || st.Bytes != 30 {
		t.Fatalf("%d events from seq %d, stats %+v; want 3 from 8 (the refused op took no number), 7 evicted, 30 bytes", len(evs), evs[0].Seq, st)
	}
}
