package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	edgesync "github.com/edge-sync/edge-sync"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild()
		return
	}
	if os.Getenv(idleCoreEnv) != "" {
		idleCoreChild()
		return
	}
	goleak.VerifyTestMain(m)
}

// testClock is a settable clock for retention tests.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openTest(t testing.TB, cfg Config) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "core.db")
	s, err := Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func reopen(t testing.TB, s *Store, cfg Config) *Store {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(s.Path(), cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { _ = s2.Close() })
	return s2
}

// opID returns a deterministic op ID for n.
func opID(n uint64) edgesync.OpID {
	var id edgesync.OpID
	binary.BigEndian.PutUint64(id[:8], 1_700_000_000_000_000_000+n)
	binary.BigEndian.PutUint64(id[8:], n)
	return id
}

func payload(seed uint64, size int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(key).Read(b) // never fails
	return b
}

func hdrFor(id edgesync.OpID, kind edgesync.OpKind, key string, data []byte) PartialHeader {
	return PartialHeader{OpID: id, Key: key, Kind: kind, Priority: edgesync.Normal, Size: int64(len(data)), Hash: sha256.Sum256(data)}
}

func mustApply(t testing.TB, s *Store, agent string, h PartialHeader, data []byte) Result {
	t.Helper()
	res, err := s.Apply(agent, h, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("apply %s: %v", h.OpID, err)
	}
	return res
}

func readAll(t testing.TB, o *Object) []byte {
	t.Helper()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("read object: %v", err)
	}
	return b
}

func mustGet(t testing.TB, s *Store, agent, key string) (Version, []byte) {
	t.Helper()
	v, o, err := s.Get(agent, key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return v, readAll(t, o)
}

func agentStats(t testing.TB, s *Store, agent string) AgentStats {
	t.Helper()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st.ByAgent[agent]
}

func TestApplyStateAndGet(t *testing.T) {
	s, _ := openTest(t, Config{ChunkSize: 1000})
	d1 := payload(1, 2500)
	res := mustApply(t, s, "site-1", hdrFor(opID(1), edgesync.StateOp, "sensors/a", d1), d1)
	if res.Duplicate || res.Version != 1 {
		t.Fatalf("first apply: %+v", res)
	}
	d2 := payload(2, 10)
	res = mustApply(t, s, "site-1", hdrFor(opID(2), edgesync.StateOp, "sensors/a", d2), d2)
	if res.Version != 2 {
		t.Fatalf("second version = %d, want 2", res.Version)
	}
	v, got := mustGet(t, s, "site-1", "sensors/a")
	if !bytes.Equal(got, d2) || v.OpID != opID(2) || v.Size != 10 || v.Hash != sha256.Sum256(d2) || v.Version != 2 {
		t.Fatalf("get: %+v, %d bytes", v, len(got))
	}
	mustApply(t, s, "site-1", hdrFor(opID(3), edgesync.StateOp, "sensors/b", d1), d1)
	mustApply(t, s, "site-1", hdrFor(opID(4), edgesync.StateOp, "other", d1), d1)
	mustApply(t, s, "site-2", hdrFor(opID(5), edgesync.StateOp, "sensors/a", d1), d1)

	keys, err := s.Keys("site-1", "sensors/", 0)
	if err != nil || len(keys) != 2 || keys[0].Key != "sensors/a" || keys[1].Key != "sensors/b" {
		t.Fatalf("Keys(sensors/) = %v, %v", keys, err)
	}
	if keys, _ := s.Keys("site-1", "", 1); len(keys) != 1 {
		t.Fatalf("Keys limit 1 returned %d", len(keys))
	}
	agents, err := s.Agents()
	if err != nil || len(agents) != 2 || agents[0] != "site-1" {
		t.Fatalf("Agents = %v, %v", agents, err)
	}
	st := agentStats(t, s, "site-1")
	if st.Keys != 3 || st.Bytes != 10+2500+2500 || st.Applied != 4 {
		t.Fatalf("stats %+v", st)
	}
	if _, _, err := s.Get("site-1", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) = %v", err)
	}
	if _, _, err := s.Get("nobody", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(unknown agent) = %v", err)
	}
	// The old version's chunks were deleted.
	if n := countChunks(t, s, "site-1"); n != 1+3+3 {
		t.Fatalf("%d chunks stored, want 7", n)
	}
}

func countChunks(t testing.TB, s *Store, agent string) int {
	t.Helper()
	n := 0
	if err := s.view(agent, func(a *agentBucket) error { n = a.blobs.Stats().KeyN; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestObjectReadAt(t *testing.T) {
	s, _ := openTest(t, Config{ChunkSize: 100})
	data := payload(9, 1234)
	mustApply(t, s, "a", hdrFor(opID(1), edgesync.StateOp, "k", data), data)
	_, o, err := s.Current("a", "k")
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		off := r.IntN(1300)
		n := r.IntN(400)
		buf := make([]byte, n)
		got, err := o.ReadAt(buf, int64(off))
		wantN := max(0, min(n, len(data)-off))
		if got != wantN {
			t.Fatalf("ReadAt(%d, %d) = %d, want %d", n, off, got, wantN)
		}
		if got < n && !errors.Is(err, io.EOF) {
			t.Fatalf("short ReadAt without EOF: %v", err)
		}
		if got == n && err != nil {
			t.Fatalf("full ReadAt error: %v", err)
		}
		if got > 0 && !bytes.Equal(buf[:got], data[off:off+got]) {
			t.Fatalf("ReadAt(%d, %d) data differs", n, off)
		}
	}
	if _, err := o.ReadAt(make([]byte, 1), -1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("negative offset: %v", err)
	}
	// Replacing the key deletes the old data under a reader.
	d2 := payload(10, 5)
	mustApply(t, s, "a", hdrFor(opID(2), edgesync.StateOp, "k", d2), d2)
	if _, err := o.ReadAt(make([]byte, 10), 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read of replaced object: %v, want ErrNotFound", err)
	}
}

func TestDedup(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
	}{{"inline", 3000}, {"staged", 300_000}} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTest(t, Config{ChunkSize: 4096, InlineMax: 64 << 10})
			data := payload(3, tc.size)
			h := hdrFor(opID(1), edgesync.StateOp, "k", data)
			if r := mustApply(t, s, "a", h, data); r.Duplicate {
				t.Fatal("first apply reported duplicate")
			}
			r := mustApply(t, s, "a", h, data)
			if !r.Duplicate || r.Version != 1 {
				t.Fatalf("second apply: %+v, want duplicate of version 1", r)
			}
			ev := hdrFor(opID(2), edgesync.EventOp, "log", data)
			r1 := mustApply(t, s, "a", ev, data)
			r2 := mustApply(t, s, "a", ev, data)
			if !r2.Duplicate || r2.Seq != r1.Seq {
				t.Fatalf("event redelivery: %+v then %+v", r1, r2)
			}
			// Via the partial path too.
			held, dup, err := s.BeginPartial("a", ev)
			if err != nil || !dup || held != 0 {
				t.Fatalf("BeginPartial(applied) = %d, %v, %v", held, dup, err)
			}
			evs, _ := s.Events("a", 0, 0)
			if len(evs) != 1 {
				t.Fatalf("%d events after redelivery, want 1", len(evs))
			}
			v, got := mustGet(t, s, "a", "k")
			if v.Version != 1 || !bytes.Equal(got, data) {
				t.Fatalf("version %d after redelivery", v.Version)
			}
			st := agentStats(t, s, "a")
			if st.Dedups != 3 || st.Bytes != 2*int64(tc.size) || st.Reserved != 0 {
				t.Fatalf("stats %+v", st)
			}
			if n, want := countChunks(t, s, "a"), 2*((tc.size+4095)/4096); n != want {
				t.Fatalf("%d chunks, want %d (duplicate data left behind?)", n, want)
			}
		})
	}
}

func TestResumeAcrossReopen(t *testing.T) {
	cfg := Config{ChunkSize: 1000}
	s, _ := openTest(t, cfg)
	data := payload(4, 10_000)
	h := hdrFor(opID(1), edgesync.StateOp, "big", data)
	if held, dup, err := s.BeginPartial("a", h); err != nil || held != 0 || dup {
		t.Fatalf("BeginPartial = %d %v %v", held, dup, err)
	}
	if err := s.WritePartial("a", h.OpID, 0, data[:3333]); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePartial("a", h.OpID, 0, data[:10]); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("rewrite at 0: %v, want ErrOutOfOrder", err)
	}
	if err := s.WritePartial("a", h.OpID, 4000, data[4000:]); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("write with a gap: %v, want ErrOutOfOrder", err)
	}
	if _, err := s.CommitPartial("a", h.OpID); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("early commit: %v, want ErrIncomplete", err)
	}
	s = reopen(t, s, cfg)
	held, ok := s.PartialSize("a", h.OpID)
	if !ok || held != 3333 {
		t.Fatalf("PartialSize after reopen = %d, %v; want 3333", held, ok)
	}
	if ps, _ := s.Partials("a"); len(ps) != 1 || ps[0].Held != 3333 || ps[0].Header != h {
		t.Fatalf("Partials = %+v", ps)
	}
	if held, _, err := s.BeginPartial("a", h); err != nil || held != 3333 {
		t.Fatalf("resume BeginPartial = %d, %v", held, err)
	}
	if err := s.WritePartial("a", h.OpID, 3333, append(data[3333:], 0)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("write past size: %v, want ErrTooLarge", err)
	}
	if err := s.WritePartial("a", h.OpID, 3333, data[3333:]); err != nil {
		t.Fatal(err)
	}
	res, err := s.CommitPartial("a", h.OpID)
	if err != nil || res.Version != 1 {
		t.Fatalf("commit: %+v, %v", res, err)
	}
	if _, ok := s.PartialSize("a", h.OpID); ok {
		t.Fatal("partial still there after commit")
	}
	if again, err := s.CommitPartial("a", h.OpID); err != nil || !again.Duplicate || again.Version != 1 {
		t.Fatalf("repeated commit: %+v, %v; want a duplicate of version 1", again, err)
	}
	s = reopen(t, s, cfg)
	if _, got := mustGet(t, s, "a", "big"); !bytes.Equal(got, data) {
		t.Fatal("data differs after resume")
	}
	if st := agentStats(t, s, "a"); st.Reserved != 0 || st.Bytes != 10_000 {
		t.Fatalf("stats %+v", st)
	}
	// A different header for the same op restarts it.
	h2 := hdrFor(opID(2), edgesync.EventOp, "e", data)
	if _, _, err := s.BeginPartial("a", h2); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePartial("a", h2.OpID, 0, data[:100]); err != nil {
		t.Fatal(err)
	}
	h2.Priority = edgesync.Critical
	if held, _, err := s.BeginPartial("a", h2); err != nil || held != 0 {
		t.Fatalf("changed header: held %d, %v; want restart at 0", held, err)
	}
	if err := s.WritePartial("a", opID(99), 0, data); !errors.Is(err, ErrNotFound) {
		t.Fatalf("write to unknown partial: %v", err)
	}
}

func TestHashMismatchDiscards(t *testing.T) {
	s, _ := openTest(t, Config{ChunkSize: 512, InlineMax: 4096})
	data := payload(5, 5000)
	h := hdrFor(opID(1), edgesync.StateOp, "k", data)
	h.Hash[0] ^= 1
	if _, _, err := s.BeginPartial("a", h); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePartial("a", h.OpID, 0, data); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitPartial("a", h.OpID); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("commit with wrong hash: %v", err)
	}
	if _, ok := s.PartialSize("a", h.OpID); ok {
		t.Fatal("partial kept after hash mismatch")
	}
	if _, err := s.Apply("a", h, bytes.NewReader(data)); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("staged Apply with wrong hash: %v", err)
	}
	small := data[:100]
	hs := hdrFor(opID(2), edgesync.StateOp, "k", small)
	hs.Hash[5] ^= 1
	if _, err := s.Apply("a", hs, bytes.NewReader(small)); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("inline Apply with wrong hash: %v", err)
	}
	if _, _, err := s.Get("a", "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("key exists after failed ops: %v", err)
	}
	if applied, _ := s.Applied("a", h.OpID); applied {
		t.Fatal("op with bad hash recorded as applied")
	}
	if n := countChunks(t, s, "a"); n != 0 {
		t.Fatalf("%d chunks left after hash mismatches", n)
	}
	if st := agentStats(t, s, "a"); st.Reserved != 0 || st.Bytes != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Short and long readers.
	if _, err := s.Apply("a", hdrFor(opID(3), edgesync.StateOp, "k", small), bytes.NewReader(small[:50])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short reader: %v", err)
	}
	if _, err := s.Apply("a", hdrFor(opID(3), edgesync.StateOp, "k", small), bytes.NewReader(data)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("long reader: %v", err)
	}
}

func TestBaseMismatch(t *testing.T) {
	s, _ := openTest(t, Config{})
	d1, d2 := payload(1, 100), payload(2, 100)
	mustApply(t, s, "a", hdrFor(opID(1), edgesync.StateOp, "k", d1), d1)
	if err := s.CheckBase("a", "k", sha256.Sum256(d1)); err != nil {
		t.Fatalf("CheckBase(right) = %v", err)
	}
	if err := s.CheckBase("a", "k", sha256.Sum256(d2)); !errors.Is(err, ErrBaseMismatch) {
		t.Fatalf("CheckBase(wrong) = %v", err)
	}
	if err := s.CheckBase("a", "none", sha256.Sum256(d2)); !errors.Is(err, ErrBaseMismatch) {
		t.Fatalf("CheckBase(no key) = %v", err)
	}
	h := hdrFor(opID(2), edgesync.StateOp, "k", d2)
	h.HasBase, h.BaseHash = true, sha256.Sum256(d2) // wrong base
	if _, err := s.Apply("a", h, bytes.NewReader(d2)); !errors.Is(err, ErrBaseMismatch) {
		t.Fatalf("apply with wrong base: %v", err)
	}
	if _, _, err := s.BeginPartial("a", h); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePartial("a", h.OpID, 0, d2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitPartial("a", h.OpID); !errors.Is(err, ErrBaseMismatch) {
		t.Fatalf("commit with wrong base: %v", err)
	}
	if _, ok := s.PartialSize("a", h.OpID); ok {
		t.Fatal("partial kept after base mismatch")
	}
	h.BaseHash = sha256.Sum256(d1)
	if r := mustApply(t, s, "a", h, d2); r.Version != 2 {
		t.Fatalf("apply with right base: %+v", r)
	}
	if _, got := mustGet(t, s, "a", "k"); !bytes.Equal(got, d2) {
		t.Fatal("wrong data after delta apply")
	}
}

func TestQuota(t *testing.T) {
	s, _ := openTest(t, Config{Quota: 1000})
	d := payload(1, 600)
	mustApply(t, s, "a", hdrFor(opID(1), edgesync.StateOp, "k1", d), d)
	if _, err := s.Apply("a", hdrFor(opID(2), edgesync.StateOp, "k2", d), bytes.NewReader(d)); !errors.Is(err, ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if _, _, err := s.Get("a", "k2"); !errors.Is(err, ErrNotFound) {
		t.Fatal("refused op was stored")
	}
	if _, _, err := s.BeginPartial("a", hdrFor(opID(3), edgesync.EventOp, "", d)); !errors.Is(err, ErrQuota) {
		t.Fatalf("partial over quota: %v", err)
	}
	// Replacing k1 is credited with its old size.
	d2 := payload(2, 900)
	mustApply(t, s, "a", hdrFor(opID(4), edgesync.StateOp, "k1", d2), d2)
	// Other agents have their own quota.
	mustApply(t, s, "b", hdrFor(opID(5), edgesync.StateOp, "k1", d2), d2)
	// A held partial reserves its size.
	small := payload(3, 100)
	if _, _, err := s.BeginPartial("b", hdrFor(opID(6), edgesync.EventOp, "", small)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply("b", hdrFor(opID(7), edgesync.EventOp, "", small[:50]), bytes.NewReader(small[:50])); !errors.Is(err, ErrQuota) {
		t.Fatalf("quota with reservation: %v", err)
	}
	if st := agentStats(t, s, "a"); st.Bytes != 900 {
		t.Fatalf("a bytes %d, want 900", st.Bytes)
	}
}

func TestEventLogAndRetention(t *testing.T) {
	s, _ := openTest(t, Config{EventMaxCount: 5, EventMaxBytes: 450})
	var datas [][]byte
	for i := range 10 {
		d := payload(uint64(i), 50+i)
		datas = append(datas, d)
		r := mustApply(t, s, "a", hdrFor(opID(uint64(i+1)), edgesync.EventOp, "log", d), d)
		if r.Seq != uint64(i+1) {
			t.Fatalf("event %d got seq %d", i, r.Seq)
		}
	}
	evs, err := s.Events("a", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 || evs[0].Seq != 6 || evs[4].Seq != 10 {
		t.Fatalf("events kept: %d, first %d", len(evs), evs[0].Seq)
	}
	for _, e := range evs {
		_, o, err := s.EventData("a", e.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, o); !bytes.Equal(got, datas[e.Seq-1]) || e.OpID != opID(e.Seq) {
			t.Fatalf("event %d data differs", e.Seq)
		}
	}
	if evs, _ := s.Events("a", 8, 2); len(evs) != 2 || evs[0].Seq != 8 {
		t.Fatalf("Events(8, 2) = %+v", evs)
	}
	// Byte bound: one 400-byte event leaves room for at most one more small one.
	big := payload(99, 400)
	mustApply(t, s, "a", hdrFor(opID(50), edgesync.EventOp, "log", big), big)
	evs, _ = s.Events("a", 0, 0)
	total := int64(0)
	for _, e := range evs {
		total += e.Size
	}
	if total > 450 || evs[len(evs)-1].Seq != 11 {
		t.Fatalf("after big event: %d bytes in %d events", total, len(evs))
	}
	st := agentStats(t, s, "a")
	if st.Events != int64(len(evs)) || st.EventBytes != total || st.Evicted != 11-int64(len(evs)) {
		t.Fatalf("stats %+v, %d events, %d bytes", st, len(evs), total)
	}
	if n := countChunks(t, s, "a"); n != len(evs) {
		t.Fatalf("%d chunks for %d events", n, len(evs))
	}
}

func TestAppliedRetention(t *testing.T) {
	clock := &testClock{now: time.Unix(1_800_000_000, 0)}
	cfg := Config{AppliedMaxCount: 3, AppliedMaxAge: time.Hour, Now: clock.Now}
	s, _ := openTest(t, cfg)
	d := payload(1, 10)
	for i := range 5 {
		mustApply(t, s, "a", hdrFor(opID(uint64(i+1)), edgesync.EventOp, "", d), d)
	}
	if st := agentStats(t, s, "a"); st.Applied != 3 {
		t.Fatalf("applied index holds %d, want 3", st.Applied)
	}
	for i := range 5 {
		applied, _ := s.Applied("a", opID(uint64(i+1)))
		if applied != (i >= 2) {
			t.Fatalf("op %d applied = %v", i+1, applied)
		}
	}
	// Age bound, enforced by Sweep.
	clock.Add(2 * time.Hour)
	mustApply(t, s, "a", hdrFor(opID(10), edgesync.EventOp, "", d), d)
	if _, err := s.Sweep(); err != nil {
		t.Fatal(err)
	}
	if st := agentStats(t, s, "a"); st.Applied != 1 {
		t.Fatalf("after aging, applied index holds %d, want 1", st.Applied)
	}
	if r := mustApply(t, s, "a", hdrFor(opID(10), edgesync.EventOp, "", d), d); !r.Duplicate {
		t.Fatal("recent op not de-duplicated")
	}
}

func TestPartialAgeSweep(t *testing.T) {
	clock := &testClock{now: time.Unix(1_800_000_000, 0)}
	cfg := Config{PartialMaxAge: time.Hour, Now: clock.Now}
	s, _ := openTest(t, cfg)
	d := payload(1, 1000)
	for i := range 2 {
		h := hdrFor(opID(uint64(i+1)), edgesync.StateOp, "k", d)
		if _, _, err := s.BeginPartial("a", h); err != nil {
			t.Fatal(err)
		}
		if err := s.WritePartial("a", h.OpID, 0, d[:500]); err != nil {
			t.Fatal(err)
		}
		clock.Add(40 * time.Minute)
	}
	n, err := s.Sweep()
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 stale partial", n, err)
	}
	if _, ok := s.PartialSize("a", opID(1)); ok {
		t.Fatal("stale partial survived")
	}
	if held, ok := s.PartialSize("a", opID(2)); !ok || held != 500 {
		t.Fatal("fresh partial lost")
	}
	if st := agentStats(t, s, "a"); st.Reserved != 1000 {
		t.Fatalf("reserved %d, want 1000", st.Reserved)
	}
}

func TestLargeObjectStaged(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 48 MiB")
	}
	cfg := Config{ChunkSize: 256 << 10, InlineMax: 1 << 20}
	s, _ := openTest(t, cfg)
	const size = 24 << 20
	data := payload(77, size)
	r := mustApply(t, s, "a", hdrFor(opID(1), edgesync.StateOp, "big", data), data)
	if r.Version != 1 {
		t.Fatalf("%+v", r)
	}
	_, o, err := s.Current("a", "big")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if n, err := io.Copy(h, io.NewSectionReader(o, 0, o.Size())); err != nil || n != size {
		t.Fatalf("copy: %d, %v", n, err)
	}
	if [32]byte(h.Sum(nil)) != sha256.Sum256(data) {
		t.Fatal("big object differs")
	}
	// Replacing it moves the old data to garbage, which is collected.
	mustApply(t, s, "a", hdrFor(opID(2), edgesync.StateOp, "big", data), data)
	if n := countChunks(t, s, "a"); n != size/(256<<10) {
		t.Fatalf("%d chunks after replace, want %d", n, size/(256<<10))
	}
}

func TestEphemeralStagingSweptAtOpen(t *testing.T) {
	s, _ := openTest(t, Config{})
	d := payload(1, 1000)
	h := hdrFor(opID(1), edgesync.StateOp, "k", d)
	if _, _, err := s.beginPartial("a", h, true); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePartial("a", h.OpID, 0, d[:700]); err != nil {
		t.Fatal(err)
	}
	if ps, _ := s.Partials("a"); len(ps) != 0 {
		t.Fatalf("Apply staging listed as resumable: %+v", ps)
	}
	s = reopen(t, s, Config{})
	if _, ok := s.PartialSize("a", h.OpID); ok {
		t.Fatal("staging of an interrupted Apply survived Open")
	}
	if n := countChunks(t, s, "a"); n != 0 {
		t.Fatalf("%d orphan chunks after Open", n)
	}
	if st := agentStats(t, s, "a"); st.Reserved != 0 {
		t.Fatalf("reserved %d after sweep", st.Reserved)
	}
}

func TestSummaries(t *testing.T) {
	s, _ := openTest(t, Config{MaxSummaryBytes: 100})
	d := payload(1, 1000)
	sum := Summary{OpID: opID(2), Key: "k", Size: 1000, Hash: sha256.Sum256(d), Bytes: []byte("mean=3.2")}
	if err := s.PutSummary("a", sum); err != nil {
		t.Fatal(err)
	}
	got, err := s.Summary("a", "k")
	if err != nil || got.Superseded || string(got.Bytes) != "mean=3.2" || got.Time.IsZero() {
		t.Fatalf("Summary = %+v, %v", got, err)
	}
	// Older summaries do not replace newer ones.
	if err := s.PutSummary("a", Summary{OpID: opID(1), Key: "k", Bytes: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Summary("a", "k"); string(got.Bytes) != "mean=3.2" {
		t.Fatal("older summary replaced a newer one")
	}
	mustApply(t, s, "a", hdrFor(opID(2), edgesync.StateOp, "k", d), d)
	if got, _ := s.Summary("a", "k"); !got.Superseded {
		t.Fatal("summary not superseded by its data")
	}
	// A summary arriving after its data is stored superseded.
	mustApply(t, s, "a", hdrFor(opID(5), edgesync.StateOp, "j", d), d)
	if err := s.PutSummary("a", Summary{OpID: opID(5), Key: "j"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Summary("a", "j"); !got.Superseded {
		t.Fatal("late summary not marked superseded")
	}
	if err := s.PutSummary("a", Summary{OpID: opID(6), Key: "j", Bytes: make([]byte, 101)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("big summary: %v", err)
	}
	list, err := s.Summaries("a", "", 0)
	if err != nil || len(list) != 2 {
		t.Fatalf("Summaries = %d, %v", len(list), err)
	}
	if st := agentStats(t, s, "a"); st.Summaries != 2 {
		t.Fatalf("summaries stat %d", st.Summaries)
	}
}

func TestInvalidArguments(t *testing.T) {
	s, _ := openTest(t, Config{MaxObjectSize: 1000})
	d := payload(1, 10)
	good := hdrFor(opID(1), edgesync.StateOp, "k", d)
	cases := map[string]struct {
		agent string
		h     PartialHeader
		want  error
	}{
		"empty agent":   {"", good, ErrInvalid},
		"zero id":       {"a", func() PartialHeader { h := good; h.OpID = edgesync.OpID{}; return h }(), ErrInvalid},
		"bad kind":      {"a", func() PartialHeader { h := good; h.Kind = 9; return h }(), ErrInvalid},
		"bad priority":  {"a", func() PartialHeader { h := good; h.Priority = 6; return h }(), ErrInvalid},
		"no key":        {"a", func() PartialHeader { h := good; h.Key = ""; return h }(), ErrInvalid},
		"long key":      {"a", func() PartialHeader { h := good; h.Key = string(make([]byte, MaxKeyLen+1)); return h }(), ErrTooLarge},
		"too big":       {"a", func() PartialHeader { h := good; h.Size = 1001; return h }(), ErrTooLarge},
		"event w/ base": {"a", func() PartialHeader { h := good; h.Kind = edgesync.EventOp; h.HasBase = true; return h }(), ErrInvalid},
	}
	for name, tc := range cases {
		if _, err := s.Apply(tc.agent, tc.h, bytes.NewReader(d)); !errors.Is(err, tc.want) {
			t.Errorf("%s: Apply = %v, want %v", name, err, tc.want)
		}
		if _, _, err := s.BeginPartial(tc.agent, tc.h); !errors.Is(err, tc.want) {
			t.Errorf("%s: BeginPartial = %v, want %v", name, err, tc.want)
		}
	}
	if agents, _ := s.Agents(); len(agents) != 0 {
		t.Fatalf("invalid ops created agents %v", agents)
	}
}

func TestClosed(t *testing.T) {
	s, _ := openTest(t, Config{})
	d := payload(1, 10)
	mustApply(t, s, "a", hdrFor(opID(1), edgesync.StateOp, "k", d), d)
	_, o, _ := s.Get("a", "k")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Apply("a", hdrFor(opID(2), edgesync.StateOp, "k", d), bytes.NewReader(d)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
	if _, _, err := s.Get("a", "k"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, err := o.ReadAt(make([]byte, 1), 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadAt after Close: %v", err)
	}
	if _, err := s.Stats(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Stats after Close: %v", err)
	}
	if _, ok := s.PartialSize("a", opID(1)); ok {
		t.Fatal("PartialSize after Close reported a partial")
	}
}

func TestConcurrentApply(t *testing.T) {
	s, _ := openTest(t, Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 4*25)
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				// Every goroutine sends the same 25 ops: each is applied once.
				d := payload(uint64(i), 100+g)
				d = d[:100]
				h := hdrFor(opID(uint64(i+1)), edgesync.EventOp, "e", d)
				if _, err := s.Apply("a", h, bytes.NewReader(d)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	evs, _ := s.Events("a", 0, 0)
	if len(evs) != 25 {
		t.Fatalf("%d events, want 25", len(evs))
	}
	if st := agentStats(t, s, "a"); st.Dedups != 75 {
		t.Fatalf("dedups %d, want 75", st.Dedups)
	}
}

func TestAgentQuota(t *testing.T) {
	quotas := map[string]int64{"small": 100, "big": 0}
	s, _ := openTest(t, Config{Quota: 1, AgentQuota: func(a string) int64 { return quotas[a] }})
	d := payload(1, 500)
	if _, err := s.Apply("small", hdrFor(opID(1), edgesync.StateOp, "k", d), bytes.NewReader(d)); !errors.Is(err, ErrQuota) {
		t.Fatalf("small agent: %v, want ErrQuota", err)
	}
	mustApply(t, s, "big", hdrFor(opID(2), edgesync.StateOp, "k", d), d)
}

func TestSmallWritesCoalesce(t *testing.T) {
	s, _ := openTest(t, Config{ChunkSize: 1000})
	data := payload(8, 5500)
	h := hdrFor(opID(1), edgesync.StateOp, "k", data)
	if _, _, err := s.BeginPartial("a", h); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 100 {
		if err := s.WritePartial("a", h.OpID, int64(off), data[off:min(off+100, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if n := countChunks(t, s, "a"); n != 6 {
		t.Fatalf("55 writes of 100 bytes left %d chunks, want 6", n)
	}
	if _, err := s.CommitPartial("a", h.OpID); err != nil {
		t.Fatal(err)
	}
	if _, got := mustGet(t, s, "a", "k"); !bytes.Equal(got, data) {
		t.Fatal("coalesced data differs")
	}
}

func TestOpenLocked(t *testing.T) {
	_, path := openTest(t, Config{})
	s2, err := Open(path, Config{OpenTimeout: 50 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a locked store succeeded")
	}
}
