package core

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// salvageOp is an op written to a store the salvage tests damage.
type salvageOp struct {
	agent string
	hdr   PartialHeader
	data  []byte
	res   Result
	// current is false for a state op a later version replaced.
	current bool
}

// salvageStore writes, for two agents, state ops held in blob chunks and
// in their records (one key replaced), large events in chunks, small
// events folded into the agent's buckets and small events left in the
// journal, and a summary. Every op's data is random and unique, so that
// testutil.Damage finds it.
func salvageStore(t *testing.T) (string, []*salvageOp) {
	t.Helper()
	s, path := openTest(t, Config{ChunkSize: 1024, foldOff: true})
	var ops []*salvageOp
	n := uint64(0)
	apply := func(agent string, kind edgesync.OpKind, key string, size int) *salvageOp {
		n++
		id := n
		if agent == "site-2" {
			id += 1000
		}
		data := payload(id, size)
		o := &salvageOp{agent: agent, hdr: hdrFor(opID(id), kind, key, data), data: data, current: true}
		o.res = mustApply(t, s, agent, o.hdr, data)
		ops = append(ops, o)
		return o
	}
	for _, agent := range []string{"site-1", "site-2"} {
		old := apply(agent, edgesync.StateOp, "k/replaced", 3000)
		apply(agent, edgesync.StateOp, "k/replaced", 500)
		old.current = false
		apply(agent, edgesync.StateOp, "k/big", 20_000)
		apply(agent, edgesync.StateOp, "k/small", 600)
		apply(agent, edgesync.EventOp, "log/big", 9000)
		for range 5 {
			apply(agent, edgesync.EventOp, "log", 700)
		}
	}
	// A summary changes its agent's buckets, which folds its journal
	// entries first: before the ones left in the journal.
	if err := s.PutSummary("site-1", Summary{OpID: opID(999), Key: "k/summed", Size: 10, Time: time.Unix(1, 0), Bytes: []byte("sum")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Fold(); err != nil {
		t.Fatal(err)
	}
	for _, agent := range []string{"site-1", "site-2"} {
		for range 4 {
			apply(agent, edgesync.EventOp, "log", 800) // left in the journal
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if n := journalEntries(t, path); n != 8 {
		t.Fatalf("the fixture left %d journal entries, want 8", n)
	}
	return path, ops
}

// checkSalvaged opens the store at path and checks that every op but
// those in lost reads back byte-identical, and that each op, sent again,
// is answered as a duplicate without being stored a second time. It
// returns the open store.
func checkSalvaged(t *testing.T, path string, ops []*salvageOp, lost ...*salvageOp) *Store {
	t.Helper()
	s := openStore(t, path)
	isLost := func(o *salvageOp) bool {
		for _, l := range lost {
			if l == o {
				return true
			}
		}
		return false
	}
	for _, o := range ops {
		if isLost(o) || !o.current {
			continue
		}
		if o.hdr.Kind == edgesync.StateOp {
			v, got := mustGet(t, s, o.agent, o.hdr.Key)
			if !bytes.Equal(got, o.data) || v.OpID != o.hdr.OpID || v.Version != o.res.Version {
				t.Errorf("%s %q after salvage: version %d op %s, %d bytes; want version %d op %s, the bytes stored",
					o.agent, o.hdr.Key, v.Version, v.OpID, len(got), o.res.Version, o.hdr.OpID)
			}
			continue
		}
		ev, obj, err := s.EventData(o.agent, o.res.Seq)
		if err != nil {
			t.Errorf("%s event %d after salvage: %v", o.agent, o.res.Seq, err)
			continue
		}
		if got := readAll(t, obj); !bytes.Equal(got, o.data) || ev.OpID != o.hdr.OpID {
			t.Errorf("%s event %d after salvage: op %s, not the bytes stored", o.agent, o.res.Seq, ev.OpID)
		}
	}
	before, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		if isLost(o) {
			continue
		}
		res, err := s.Apply(o.agent, o.hdr, bytes.NewReader(o.data))
		if err != nil {
			t.Fatalf("%s op %s sent again: %v", o.agent, o.hdr.OpID, err)
		}
		if !res.Duplicate && !res.Stale {
			t.Errorf("%s op %s (%q) sent again after salvage was stored again (seq %d, version %d)",
				o.agent, o.hdr.OpID, o.hdr.Key, res.Seq, res.Version)
		}
	}
	after, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if after.Total.Events != before.Total.Events || after.Total.Bytes != before.Total.Bytes {
		t.Errorf("ops sent again changed the store: events %d → %d, bytes %d → %d",
			before.Total.Events, after.Total.Events, before.Total.Bytes, after.Total.Bytes)
	}
	return s
}

// salvage runs SalvageInPlace on path and checks that the damaged file
// is kept, byte for byte, beside it and that no copy is left over.
func salvage(t *testing.T, path string) SalvageReport {
	t.Helper()
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, err := SalvageInPlace(path, SalvageOptions{})
	if err != nil {
		t.Fatalf("salvage: %v", err)
	}
	if kept, err := os.ReadFile(r.Aside); err != nil || !bytes.Equal(kept, orig) {
		t.Fatalf("the damaged file is not kept as it was at %s: %v", r.Aside, err)
	}
	if _, err := os.Stat(SalvageTemp(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("salvage left its copy behind: %v", err)
	}
	return r
}

func findOp(t *testing.T, ops []*salvageOp, agent, key string, nth int) *salvageOp {
	t.Helper()
	for _, o := range ops {
		if o.agent == agent && o.hdr.Key == key {
			if nth == 0 {
				return o
			}
			nth--
		}
	}
	t.Fatalf("no op %d of %s %q", nth, agent, key)
	return nil
}

func TestVerifyIntactStore(t *testing.T) {
	path, _ := salvageStore(t)
	orig, _ := os.ReadFile(path)
	r, err := VerifyFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("an intact store has damage: %+v", r.Damaged)
	}
	// Per agent: 3 keys, 6 events folded, 4 in the journal, 10 applied
	// in its buckets (the replaced version's too).
	if r.Agents != 2 || r.Keys != 6 || r.Events != 12 || r.Journal != 8 || r.Applied != 20 || r.Summaries != 1 {
		t.Fatalf("verify counted %+v", r)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, orig) {
		t.Fatal("verify changed the file")
	}
	// Salvage of an intact store copies everything, and the counters it
	// counts again are the store's.
	sr := salvage(t, path)
	if !sr.OK() || sr.Rebuilt != 0 || sr.Unmarked != 0 {
		t.Fatalf("salvage of an intact store: %+v", sr)
	}
	stats := func(p string) Stats {
		s, err := Open(p, Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	if was, now := stats(sr.Aside), stats(path); !reflect.DeepEqual(was, now) {
		t.Fatalf("counters after salvage:\n%+v\nbefore:\n%+v", now, was)
	}
}

// TestSalvageDamagedJournalEntry damages the length of one journal
// entry's data: the core refuses to open the store; verify names the
// entry; salvage copies the rest, the journal's other entries with their
// sequence numbers, and the core opens the copy.
func TestSalvageDamagedJournalEntry(t *testing.T) {
	path, ops := salvageStore(t)
	bad := findOp(t, ops, "site-1", "log", 6) // the 2nd of the journal's
	testutil.Damage(t, path, bad.data[:64], -2, 2)
	if err := openNoPanic(t, path, Config{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a store with a damaged journal entry: %v, want ErrCorrupt", err)
	}
	r, err := VerifyFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if d := r.Damaged; len(d) != 1 || d[0].Bucket != "journal" || d[0].Agent != "site-1" ||
		d[0].OpID != bad.hdr.OpID.String() || d[0].Seq != bad.res.Seq {
		t.Fatalf("verify found %+v, want the journal entry of site-1's op %s, seq %d", d, bad.hdr.OpID, bad.res.Seq)
	}
	sr := salvage(t, path)
	if len(sr.Damaged) != 1 || sr.Journal != 7 {
		t.Fatalf("salvage: %d damaged, %d journal entries copied; want 1, 7", len(sr.Damaged), sr.Journal)
	}
	checkSalvaged(t, path, ops, bad)
}

// TestSalvageDamagedDataPage damages the header of a page holding
// chunks of site-2's large object: bbolt can no longer read the page.
func TestSalvageDamagedDataPage(t *testing.T) {
	path, ops := salvageStore(t)
	bad := findOp(t, ops, "site-2", "k/big", 0)
	testutil.DamagePageHeader(t, path, bad.data[8000:8064], 4096)
	r, err := VerifyFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() {
		t.Fatal("verify found no damage")
	}
	for _, d := range r.Damaged {
		if d.Agent == "site-1" {
			t.Errorf("damage reported for the other agent: %+v", d)
		}
	}
	t.Logf("damage: %+v", r.Damaged)
	sr := salvage(t, path)
	// What else shared the page is lost too: find it by reading.
	var lost []*salvageOp
	lost = append(lost, bad)
	for _, d := range sr.Damaged {
		for _, o := range ops {
			if d.OpID == o.hdr.OpID.String() && o != bad {
				lost = append(lost, o)
			}
		}
	}
	s := checkSalvaged(t, path, ops, lost...)
	if len(lost) > 2 {
		t.Errorf("one damaged page lost %d ops", len(lost))
	}
	// The lost op's applied entry was dropped with it: sent again, it is
	// the key's current version again.
	if res, err := s.Apply("site-2", bad.hdr, bytes.NewReader(bad.data)); err != nil || res.Duplicate || res.Stale {
		t.Fatalf("the lost op sent again: %+v %v, want it stored", res, err)
	}
	if _, got := mustGet(t, s, "site-2", "k/big"); !bytes.Equal(got, bad.data) {
		t.Fatal("the lost op sent again does not read back")
	}
}

// putJunk replaces the record under key in one of agent's buckets with
// bytes no version writes, as bad bytes in a leaf would, and returns the
// one damage verify finds.
func putJunk(t *testing.T, path, agent string, bucket, key []byte) Damage {
	t.Helper()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bktAgents).Bucket([]byte(agent)).Bucket(bucket).Put(key, []byte{1, 0})
	})
	r, err := VerifyFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Damaged) != 1 || r.Damaged[0].Agent != agent || r.Damaged[0].Bucket != string(bucket) {
		t.Fatalf("verify found %+v, want one record of %s's %s", r.Damaged, agent, bucket)
	}
	return r.Damaged[0]
}

// TestSalvageDamagedEventRecord replaces one event record with junk,
// as bad bytes in the events bucket's leaf would: verify names the agent
// and sequence number; salvage copies the rest and drops the op's
// applied entry, so that if its agent still holds the op and sends it
// again it is stored again, under a new sequence number.
func TestSalvageDamagedEventRecord(t *testing.T) {
	path, ops := salvageStore(t)
	bad := findOp(t, ops, "site-1", "log", 1)
	if d := putJunk(t, path, "site-1", bktEvents, u64b(bad.res.Seq)); d.Seq != bad.res.Seq {
		t.Fatalf("verify found %+v, want site-1's event %d", d, bad.res.Seq)
	}
	if sr := salvage(t, path); sr.Unmarked != 1 || sr.Rebuilt != 0 {
		t.Fatalf("salvage dropped %d applied entries and rebuilt %d, want 1 and 0", sr.Unmarked, sr.Rebuilt)
	}
	s := checkSalvaged(t, path, ops, bad)
	if _, _, err := s.EventData("site-1", bad.res.Seq); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the damaged event after salvage: %v, want ErrNotFound", err)
	}
	last := findOp(t, ops, "site-1", "log", 8).res.Seq // the newest, in the journal
	res, err := s.Apply("site-1", bad.hdr, bytes.NewReader(bad.data))
	if err != nil || res.Duplicate || res.Seq != last+1 {
		t.Fatalf("the damaged event's op sent again: %+v %v, want it stored as event %d", res, err, last+1)
	}
	if _, o, err := s.EventData("site-1", res.Seq); err != nil || !bytes.Equal(readAll(t, o), bad.data) {
		t.Fatalf("the op sent again does not read back: %v", err)
	}
}

// TestSalvageDamagedVersionRecord replaces the record of a key that had
// two versions with junk: salvage drops the applied entry of the newest
// op of the key only, so the older op sent again is still a duplicate
// and the newer one is stored again as the key's version.
func TestSalvageDamagedVersionRecord(t *testing.T) {
	path, ops := salvageStore(t)
	cur := findOp(t, ops, "site-1", "k/replaced", 1)
	if d := putJunk(t, path, "site-1", bktKeys, []byte("k/replaced")); d.Key != "k/replaced" {
		t.Fatalf("verify found %+v, want site-1's key k/replaced", d)
	}
	if sr := salvage(t, path); sr.Unmarked != 1 {
		t.Fatalf("salvage dropped %d applied entries, want 1", sr.Unmarked)
	}
	s := checkSalvaged(t, path, ops, cur) // the older op: still a duplicate
	if res, err := s.Apply("site-1", cur.hdr, bytes.NewReader(cur.data)); err != nil || res.Duplicate {
		t.Fatalf("the lost version's op sent again: %+v %v, want it stored", res, err)
	}
	if _, got := mustGet(t, s, "site-1", "k/replaced"); !bytes.Equal(got, cur.data) {
		t.Fatal("the op sent again does not read back")
	}
}

// TestSalvageRebuildsAppliedEntry damages the applied entries of an op
// whose event survives and of a state op a newer version replaced: both
// ops sent again must not be stored a second time.
func TestSalvageRebuildsAppliedEntry(t *testing.T) {
	path, ops := salvageStore(t)
	ev := findOp(t, ops, "site-2", "log/big", 0)
	old := findOp(t, ops, "site-2", "k/replaced", 0)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		applied := tx.Bucket(bktAgents).Bucket([]byte("site-2")).Bucket(bktApplied)
		for _, o := range []*salvageOp{ev, old} {
			if err := applied.Put(o.hdr.OpID[:], []byte{9}); err != nil {
				return err
			}
		}
		return nil
	})
	r, err := VerifyFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Damaged) != 2 || r.Damaged[0].Bucket != "applied" {
		t.Fatalf("verify found %+v, want two applied entries", r.Damaged)
	}
	sr := salvage(t, path)
	if sr.Rebuilt != 1 {
		t.Fatalf("salvage rebuilt %d applied entries, want 1 (the event's)", sr.Rebuilt)
	}
	checkSalvaged(t, path, ops) // both resends: a duplicate and a stale op
}

func TestVerifyRefusesARunningCore(t *testing.T) {
	s, path := openTest(t, Config{})
	_ = s
	_, err := VerifyFile(path, 100*time.Millisecond)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "stop the core") {
		t.Fatalf("verify of an open store: %v, want ErrLocked saying to stop the core", err)
	}
	if _, err := SalvageInPlace(path, SalvageOptions{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("salvage of an open store: %v, want ErrLocked", err)
	}
}

const salvageChildEnv = "EDGE_SYNC_SALVAGE_CHILD"

// salvageChild runs in a re-executed test binary: it salvages the store
// at $EDGE_SYNC_SALVAGE_CHILD, committing small transactions, and after
// the first prints "copied N" and waits to be killed.
func salvageChild() {
	salvageCommitBytes = 4096
	_, err := SalvageInPlace(os.Getenv(salvageChildEnv), SalvageOptions{Progress: func(n int) {
		fmt.Printf("copied %d\n", n)
		time.Sleep(time.Hour) // until SIGKILL (a select{} would end the process: no other goroutine runs)
	}})
	fmt.Println("salvage ended:", err)
	os.Exit(1)
}

// TestSalvageSIGKILL kills a salvage half-way: the damaged store is left
// in place as it was, and the next salvage removes the half-written copy
// and completes.
func TestSalvageSIGKILL(t *testing.T) {
	path, ops := salvageStore(t)
	bad := findOp(t, ops, "site-1", "log", 6)
	testutil.Damage(t, path, bad.data[:64], -2, 2)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), salvageChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if !strings.HasPrefix(line, "copied ") {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("the salvage child said %q (%v), want a progress line", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the salvage child ended with %v, not by SIGKILL", cmd.ProcessState)
	}
	if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, orig) {
		t.Fatalf("a killed salvage changed the store: %v", err)
	}
	if _, err := os.Stat(SalvageTemp(path)); err != nil {
		t.Fatalf("the killed salvage left no copy behind (killed too late to test?): %v", err)
	}
	if aside, _ := filepath.Glob(path + ".damaged-*"); len(aside) != 0 {
		t.Fatalf("a killed salvage moved the store aside: %v", aside)
	}
	salvage(t, path)
	checkSalvaged(t, path, ops, bad)
}

// TestSalvageDamagedRecordPage damages the header of the page that holds
// site-1's versions, then the one that holds site-2's small events, so
// that no record there is named:
// every op of the fixture either reads back byte-identical and is a
// duplicate when sent again, or is lost and stored again when sent.
func TestSalvageDamagedRecordPage(t *testing.T) {
	t.Run("keys", func(t *testing.T) { testSalvageDamagedRecordPage(t, "site-1", "k/small", 0) })
	t.Run("events", func(t *testing.T) { testSalvageDamagedRecordPage(t, "site-2", "log", 1) })
}

func testSalvageDamagedRecordPage(t *testing.T, agent, key string, nth int) {
	path, ops := salvageStore(t)
	testutil.DamagePageHeader(t, path, findOp(t, ops, agent, key, nth).data[:64], 4096)
	r, err := VerifyFile(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.OK() {
		t.Fatal("verify found no damage")
	}
	t.Logf("damage: %+v", r.Damaged)
	sr := salvage(t, path)
	s := openStore(t, path)
	lost := 0
	for _, o := range ops {
		if !o.current {
			continue
		}
		var got []byte
		var err error
		if o.hdr.Kind == edgesync.StateOp {
			var obj *Object
			var v Version
			if v, obj, err = s.Get(o.agent, o.hdr.Key); err == nil && v.OpID == o.hdr.OpID {
				got = readAll(t, obj)
			}
		} else {
			var obj *Object
			if _, obj, err = s.EventData(o.agent, o.res.Seq); err == nil {
				got = readAll(t, obj)
			}
		}
		res, aerr := s.Apply(o.agent, o.hdr, bytes.NewReader(o.data))
		if aerr != nil {
			t.Fatalf("%s op %s sent again: %v", o.agent, o.hdr.OpID, aerr)
		}
		if got != nil {
			if !bytes.Equal(got, o.data) || !res.Duplicate {
				t.Errorf("%s op %s (%q) survived: equal %v, duplicate when sent again %v", o.agent, o.hdr.OpID, o.hdr.Key,
					bytes.Equal(got, o.data), res.Duplicate)
			}
			continue
		}
		lost++
		if res.Duplicate {
			t.Errorf("%s op %s (%q) was lost but is a duplicate when sent again", o.agent, o.hdr.OpID, o.hdr.Key)
		}
	}
	for _, o := range ops {
		if !o.current {
			if res, err := s.Apply(o.agent, o.hdr, bytes.NewReader(o.data)); err != nil || (!res.Duplicate && !res.Stale) {
				t.Errorf("replaced op %s sent again: %+v %v", o.hdr.OpID, res, err)
			}
		}
	}
	if lost == 0 || lost != sr.Unmarked {
		t.Errorf("%d ops lost, %d applied entries dropped; want the same, above 0", lost, sr.Unmarked)
	}
}
