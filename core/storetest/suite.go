package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

func testApplyStateAndGet(t *testing.T, h Harness) {
	s := h.Open(t, core.Config{ChunkSize: 1000})
	d1 := Payload(1, 2500)
	res := mustApply(t, s, "site-1", Header(OpID(1), edgesync.StateOp, "sensors/a", d1), d1)
	if res.Duplicate || res.Version != 1 {
		t.Fatalf("first apply: %+v", res)
	}
	d2 := Payload(2, 10)
	res = mustApply(t, s, "site-1", Header(OpID(2), edgesync.StateOp, "sensors/a", d2), d2)
	if res.Version != 2 {
		t.Fatalf("second version = %d, want 2", res.Version)
	}
	v, got := mustGet(t, s, "site-1", "sensors/a")
	if !bytes.Equal(got, d2) || v.OpID != OpID(2) || v.Size != 10 || v.Hash != sha256.Sum256(d2) || v.Version != 2 {
		t.Fatalf("get: %+v, %d bytes", v, len(got))
	}
	mustApply(t, s, "site-1", Header(OpID(3), edgesync.StateOp, "sensors/b", d1), d1)
	mustApply(t, s, "site-1", Header(OpID(4), edgesync.StateOp, "other", d1), d1)
	mustApply(t, s, "site-2", Header(OpID(5), edgesync.StateOp, "sensors/a", d1), d1)

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
	if _, _, err := s.Current("site-1", "nope"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Current(missing) = %v", err)
	}
	if _, _, err := s.Current("nobody", "x"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Current(unknown agent) = %v", err)
	}
	if _, err := s.Keys("nobody", "", 0); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Keys(unknown agent) = %v", err)
	}
	// The replaced version's chunks were deleted.
	checkChunks(t, h, s, "site-1", 1+3+3)
}

func testObjectReadAt(t *testing.T, h Harness) {
	// InlineMax below the size: the data is staged, as large data is;
	// the default: it is written at once.
	for name, inlineMax := range map[string]int64{"staged": 500, "inline": 0} {
		t.Run(name, func(t *testing.T) {
			testObjectReadAtCfg(t, h, core.Config{ChunkSize: 100, InlineMax: inlineMax})
		})
	}
}

func testObjectReadAtCfg(t *testing.T, h Harness, cfg core.Config) {
	s := h.Open(t, cfg)
	data := Payload(9, 1234)
	mustApply(t, s, "a", Header(OpID(1), edgesync.StateOp, "k", data), data)
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
	if _, err := o.ReadAt(make([]byte, 1), -1); !errors.Is(err, core.ErrInvalid) {
		t.Fatalf("negative offset: %v", err)
	}
	// A reader of a replaced version never returns mixed data: it fails
	// with ErrNotFound, or (a store that kept what it read) the old data.
	d2 := Payload(10, 5)
	mustApply(t, s, "a", Header(OpID(2), edgesync.StateOp, "k", d2), d2)
	buf := make([]byte, len(data))
	n, err := o.ReadAt(buf, 0)
	if h.LazyObjects && !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("read of replaced object: %d bytes, %v; want ErrNotFound", n, err)
	}
	if err == nil && !bytes.Equal(buf[:n], data) || err != nil && !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("read of replaced object: %d bytes, %v; want ErrNotFound or the old data", n, err)
	}
}

func testDedup(t *testing.T, h Harness) {
	for _, tc := range []struct {
		name string
		size int
	}{{"inline", 3000}, {"staged", 300_000}} {
		t.Run(tc.name, func(t *testing.T) {
			s := h.Open(t, core.Config{ChunkSize: 4096, InlineMax: 64 << 10})
			data := Payload(3, tc.size)
			hd := Header(OpID(1), edgesync.StateOp, "k", data)
			if r := mustApply(t, s, "a", hd, data); r.Duplicate {
				t.Fatal("first apply reported duplicate")
			}
			r := mustApply(t, s, "a", hd, data)
			if !r.Duplicate || r.Version != 1 {
				t.Fatalf("second apply: %+v, want duplicate of version 1", r)
			}
			ev := Header(OpID(2), edgesync.EventOp, "log", data)
			r1 := mustApply(t, s, "a", ev, data)
			r2 := mustApply(t, s, "a", ev, data)
			if !r2.Duplicate || r2.Seq != r1.Seq {
				t.Fatalf("event redelivery: %+v then %+v", r1, r2)
			}
			// Via the partial path too.
			held, dup, err := s.BeginPartial("a", ev)
			if err != nil || held != 0 || (!dup && !(h.MemoryPartials && tc.size <= 64<<10)) {
				t.Fatalf("BeginPartial(applied) = %d, %v, %v", held, dup, err)
			}
			if !dup {
				// A small op held in memory: its commit finds it applied.
				if err := s.WritePartial("a", ev.OpID, 0, data); err != nil {
					t.Fatal(err)
				}
				if r3, err := s.CommitPartial("a", ev.OpID); err != nil || !r3.Duplicate || r3.Seq != r1.Seq {
					t.Fatalf("commit of an applied op: %+v, %v", r3, err)
				}
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
			checkChunks(t, h, s, "a", 2*((tc.size+4095)/4096))
		})
	}
}

func testResumeAcrossReopen(t *testing.T, h Harness) {
	cfg := core.Config{ChunkSize: 1000, InlineMax: 4096}
	s := h.Open(t, cfg)
	data := Payload(4, 10_000)
	hd := Header(OpID(1), edgesync.StateOp, "big", data)
	if held, dup, err := s.BeginPartial("a", hd); err != nil || held != 0 || dup {
		t.Fatalf("BeginPartial = %d %v %v", held, dup, err)
	}
	if err := s.WritePartial("a", hd.OpID, 0, data[:3333]); err != nil {
		t.Fatal(err)
	}
	if err := s.WritePartial("a", hd.OpID, 0, data[:10]); !errors.Is(err, core.ErrOutOfOrder) {
		t.Fatalf("rewrite at 0: %v, want ErrOutOfOrder", err)
	}
	if err := s.WritePartial("a", hd.OpID, 4000, data[4000:]); !errors.Is(err, core.ErrOutOfOrder) {
		t.Fatalf("write with a gap: %v, want ErrOutOfOrder", err)
	}
	if _, err := s.CommitPartial("a", hd.OpID); !errors.Is(err, core.ErrIncomplete) {
		t.Fatalf("early commit: %v, want ErrIncomplete", err)
	}
	s = h.Reopen(t, s, cfg)
	held, ok := s.PartialSize("a", hd.OpID)
	if !ok || held != 3333 {
		t.Fatalf("PartialSize after reopen = %d, %v; want 3333", held, ok)
	}
	if ps, _ := s.Partials("a"); len(ps) != 1 || ps[0].Held != 3333 || ps[0].Header != hd {
		t.Fatalf("Partials = %+v", ps)
	}
	if held, _, err := s.BeginPartial("a", hd); err != nil || held != 3333 {
		t.Fatalf("resume BeginPartial = %d, %v", held, err)
	}
	if err := s.WritePartial("a", hd.OpID, 3333, append(data[3333:], 0)); !errors.Is(err, core.ErrTooLarge) {
		t.Fatalf("write past size: %v, want ErrTooLarge", err)
	}
	if err := s.WritePartial("a", hd.OpID, 3333, data[3333:]); err != nil {
		t.Fatal(err)
	}
	res, err := s.CommitPartial("a", hd.OpID)
	if err != nil || res.Version != 1 {
		t.Fatalf("commit: %+v, %v", res, err)
	}
	if _, ok := s.PartialSize("a", hd.OpID); ok {
		t.Fatal("partial still there after commit")
	}
	if again, err := s.CommitPartial("a", hd.OpID); err != nil || !again.Duplicate || again.Version != 1 {
		t.Fatalf("repeated commit: %+v, %v; want a duplicate of version 1", again, err)
	}
	s = h.Reopen(t, s, cfg)
	if _, got := mustGet(t, s, "a", "big"); !bytes.Equal(got, data) {
		t.Fatal("data differs after resume")
	}
	if st := agentStats(t, s, "a"); st.Reserved != 0 || st.Bytes != 10_000 {
		t.Fatalf("stats %+v", st)
	}
	// A different header for the same op restarts it.
	h2 := Header(OpID(2), edgesync.EventOp, "e", data)
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
	if err := s.WritePartial("a", OpID(99), 0, data); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("write to unknown partial: %v", err)
	}
}

func testHashMismatchDiscards(t *testing.T, h Harness) {
	s := h.Open(t, core.Config{ChunkSize: 512, InlineMax: 4096})
	data := Payload(5, 5000)
	hd := Header(OpID(1), edgesync.StateOp, "k", data)
	hd.Hash[0] ^= 1
	if _, err := commitPartial(t, s, "a", hd, data); !errors.Is(err, core.ErrHashMismatch) {
		t.Fatalf("commit with wrong hash: %v", err)
	}
	if _, ok := s.PartialSize("a", hd.OpID); ok {
		t.Fatal("partial kept after hash mismatch")
	}
	if _, err := s.Apply("a", hd, bytes.NewReader(data)); !errors.Is(err, core.ErrHashMismatch) {
		t.Fatalf("staged Apply with wrong hash: %v", err)
	}
	small := data[:100]
	hs := Header(OpID(2), edgesync.StateOp, "k", small)
	hs.Hash[5] ^= 1
	if _, err := s.Apply("a", hs, bytes.NewReader(small)); !errors.Is(err, core.ErrHashMismatch) {
		t.Fatalf("inline Apply with wrong hash: %v", err)
	}
	// A small partial op too.
	if _, err := commitPartial(t, s, "a", hs, small); !errors.Is(err, core.ErrHashMismatch) {
		t.Fatalf("small commit with wrong hash: %v", err)
	}
	if _, _, err := s.Current("a", "k"); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("key exists after failed ops: %v", err)
	}
	if applied, _ := s.Applied("a", hd.OpID); applied {
		t.Fatal("op with bad hash recorded as applied")
	}
	checkChunks(t, h, s, "a", 0)
	if st := agentStats(t, s, "a"); st.Reserved != 0 || st.Bytes != 0 {
		t.Fatalf("stats %+v", st)
	}
	// Short and long readers.
	if _, err := s.Apply("a", Header(OpID(3), edgesync.StateOp, "k", small), bytes.NewReader(small[:50])); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("short reader: %v", err)
	}
	if _, err := s.Apply("a", Header(OpID(3), edgesync.StateOp, "k", small), bytes.NewReader(data)); !errors.Is(err, core.ErrTooLarge) {
		t.Fatalf("long reader: %v", err)
	}
}

func testBaseMismatch(t *testing.T, h Harness) {
	s := h.Open(t, core.Config{})
	d1, d2 := Payload(1, 100), Payload(2, 100)
	mustApply(t, s, "a", Header(OpID(1), edgesync.StateOp, "k", d1), d1)
	if err := s.CheckBase("a", "k", sha256.Sum256(d1)); err != nil {
		t.Fatalf("CheckBase(right) = %v", err)
	}
	if err := s.CheckBase("a", "k", sha256.Sum256(d2)); !errors.Is(err, core.ErrBaseMismatch) {
		t.Fatalf("CheckBase(wrong) = %v", err)
	}
	if err := s.CheckBase("a", "none", sha256.Sum256(d2)); !errors.Is(err, core.ErrBaseMismatch) {
		t.Fatalf("CheckBase(no key) = %v", err)
	}
	hd := Header(OpID(2), edgesync.StateOp, "k", d2)
	hd.HasBase, hd.BaseHash = true, sha256.Sum256(d2) // wrong base
	if _, err := s.Apply("a", hd, bytes.NewReader(d2)); !errors.Is(err, core.ErrBaseMismatch) {
		t.Fatalf("apply with wrong base: %v", err)
	}
	if _, err := commitPartial(t, s, "a", hd, d2); !errors.Is(err, core.ErrBaseMismatch) {
		t.Fatalf("commit with wrong base: %v", err)
	}
	if _, ok := s.PartialSize("a", hd.OpID); ok {
		t.Fatal("partial kept after base mismatch")
	}
	hd.BaseHash = sha256.Sum256(d1)
	if r := mustApply(t, s, "a", hd, d2); r.Version != 2 {
		t.Fatalf("apply with right base: %+v", r)
	}
	if _, got := mustGet(t, s, "a", "k"); !bytes.Equal(got, d2) {
		t.Fatal("wrong data after delta apply")
	}
}

func testQuota(t *testing.T, h Harness) {
	s := h.Open(t, core.Config{Quota: 1000})
	d := Payload(1, 600)
	mustApply(t, s, "a", Header(OpID(1), edgesync.StateOp, "k1", d), d)
	if _, err := s.Apply("a", Header(OpID(2), edgesync.StateOp, "k2", d), bytes.NewReader(d)); !errors.Is(err, core.ErrQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if _, _, err := s.Current("a", "k2"); !errors.Is(err, core.ErrNotFound) {
		t.Fatal("refused op was stored")
	}
	if _, _, err := s.BeginPartial("a", Header(OpID(3), edgesync.EventOp, "", d)); !errors.Is(err, core.ErrQuota) {
		t.Fatalf("partial over quota: %v", err)
	}
	// Replacing k1 is credited with its old size.
	d2 := Payload(2, 900)
	mustApply(t, s, "a", Header(OpID(4), edgesync.StateOp, "k1", d2), d2)
	// Other agents have their own quota.
	mustApply(t, s, "b", Header(OpID(5), edgesync.StateOp, "k1", d2), d2)
	// A held partial reserves its size.
	small := Payload(3, 100)
	if _, _, err := s.BeginPartial("b", Header(OpID(6), edgesync.EventOp, "", small)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply("b", Header(OpID(7), edgesync.EventOp, "", small[:50]), bytes.NewReader(small[:50])); !errors.Is(err, core.ErrQuota) {
		t.Fatalf("quota with reservation: %v", err)
	}
	if st := agentStats(t, s, "a"); st.Bytes != 900 {
		t.Fatalf("a bytes %d, want 900", st.Bytes)
	}
}

func testAgentQuota(t *testing.T, h Harness) {
	quotas := map[string]int64{"small": 100, "big": 0}
	s := h.Open(t, core.Config{Quota: 1, AgentQuota: func(a string) int64 { return quotas[a] }})
	d := Payload(1, 500)
	if _, err := s.Apply("small", Header(OpID(1), edgesync.StateOp, "k", d), bytes.NewReader(d)); !errors.Is(err, core.ErrQuota) {
		t.Fatalf("small agent: %v, want ErrQuota", err)
	}
	mustApply(t, s, "big", Header(OpID(2), edgesync.StateOp, "k", d), d)
}

func testEventLogAndRetention(t *testing.T, h Harness) {
	s := h.Open(t, core.Config{EventMaxCount: 5, EventMaxBytes: 450})
	datas := map[uint64][]byte{} // seq → data
	var seqs []uint64
	for i := range 10 {
		d := Payload(uint64(i), 50+i)
		r := mustApply(t, s, "a", Header(OpID(uint64(i+1)), edgesync.EventOp, "log", d), d)
		if h.DenseSeq && r.Seq != uint64(i+1) || len(seqs) > 0 && r.Seq <= seqs[len(seqs)-1] {
			t.Fatalf("event %d got seq %d after %v", i, r.Seq, seqs)
		}
		datas[r.Seq] = d
		seqs = append(seqs, r.Seq)
	}
	sweep(t, h, s)
	evs, err := s.Events("a", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 || evs[0].Seq != seqs[5] || evs[4].Seq != seqs[9] {
		t.Fatalf("events kept: %d, first %d", len(evs), evs[0].Seq)
	}
	checkSeqs(t, h, evs, seqs[5])
	for i, e := range evs {
		_, o, err := s.EventData("a", e.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, o); !bytes.Equal(got, datas[e.Seq]) || e.OpID != OpID(uint64(i+6)) {
			t.Fatalf("event %d data differs", e.Seq)
		}
	}
	if evs, _ := s.Events("a", seqs[7], 2); len(evs) != 2 || evs[0].Seq != seqs[7] {
		t.Fatalf("Events(%d, 2) = %+v", seqs[7], evs)
	}
	if _, _, err := s.EventData("a", seqs[0]); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("EventData of a dropped event: %v", err)
	}
	if _, _, err := s.EventData("b", seqs[9]); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("EventData of another agent's event: %v", err)
	}
	// Byte bound: one 400-byte event leaves room for at most one more small one.
	big := Payload(99, 400)
	rbig := mustApply(t, s, "a", Header(OpID(50), edgesync.EventOp, "log", big), big)
	sweep(t, h, s)
	evs, _ = s.Events("a", 0, 0)
	total := int64(0)
	for _, e := range evs {
		total += e.Size
	}
	if total > 450 || evs[len(evs)-1].Seq != rbig.Seq {
		t.Fatalf("after big event: %d bytes in %d events", total, len(evs))
	}
	st := agentStats(t, s, "a")
	if st.Events != int64(len(evs)) || st.EventBytes != total || st.Evicted != 11-int64(len(evs)) {
		t.Fatalf("stats %+v, %d events, %d bytes", st, len(evs), total)
	}
	checkChunks(t, h, s, "a", len(evs))
}

// sweep applies the retention bounds where the store does so only when
// asked; a store that holds them at each commit must hold them without it.
func sweep(t testing.TB, h Harness, s Store) {
	t.Helper()
	if h.BoundOnCommit {
		return
	}
	if _, err := s.Sweep(); err != nil {
		t.Fatal(err)
	}
}

func testPartialAgeSweep(t *testing.T, h Harness) {
	clock := testutil.NewClock()
	cfg := core.Config{PartialMaxAge: time.Hour, Now: clock.Now, InlineMax: 512}
	for name, size := range map[string]int{"small": 300, "large": 1000} { // held in memory where a store does so; staged
		t.Run(name, func(t *testing.T) {
			s := h.Open(t, cfg)
			d := Payload(1, size)
			for i := range 2 {
				hd := Header(OpID(uint64(i+1)), edgesync.StateOp, "k", d)
				if _, _, err := s.BeginPartial("a", hd); err != nil {
					t.Fatal(err)
				}
				if err := s.WritePartial("a", hd.OpID, 0, d[:size/2]); err != nil {
					t.Fatal(err)
				}
				clock.Add(40 * time.Minute)
			}
			n, err := s.Sweep()
			if err != nil || n != 1 {
				t.Fatalf("Sweep = %d, %v; want 1 stale partial", n, err)
			}
			if _, ok := s.PartialSize("a", OpID(1)); ok {
				t.Fatal("stale partial survived")
			}
			if held, ok := s.PartialSize("a", OpID(2)); !ok || held != int64(size/2) {
				t.Fatal("fresh partial lost")
			}
			if st := agentStats(t, s, "a"); st.Reserved != int64(size) {
				t.Fatalf("reserved %d, want %d", st.Reserved, size)
			}
		})
	}
}

func testLargeObjectStaged(t *testing.T, h Harness) {
	if testing.Short() {
		t.Skip("writes 48 MiB")
	}
	cfg := core.Config{ChunkSize: 256 << 10, InlineMax: 1 << 20}
	s := h.Open(t, cfg)
	const size = 24 << 20
	data := Payload(77, size)
	r := mustApply(t, s, "a", Header(OpID(1), edgesync.StateOp, "big", data), data)
	if r.Version != 1 {
		t.Fatalf("%+v", r)
	}
	CheckObject(t, s, "a", "big", data, "in chunks of 256 KiB")
	mustApply(t, s, "a", Header(OpID(2), edgesync.StateOp, "big", data), data)
	if st := agentStats(t, s, "a"); st.Bytes != size {
		t.Fatalf("%d bytes stored after replacing, want %d", st.Bytes, size)
	}
	// The old data was moved to garbage and collected.
	checkChunks(t, h, s, "a", size/(256<<10))
}

func testSummaries(t *testing.T, h Harness) {
	s := h.Open(t, core.Config{MaxSummaryBytes: 100})
	d := Payload(1, 1000)
	sum := core.Summary{OpID: OpID(2), Key: "k", Size: 1000, Hash: sha256.Sum256(d), Bytes: []byte("mean=3.2")}
	if err := s.PutSummary("a", sum); err != nil {
		t.Fatal(err)
	}
	got, err := s.Summary("a", "k")
	if err != nil || got.Superseded || string(got.Bytes) != "mean=3.2" || got.Time.IsZero() || got.Hash != sum.Hash || got.Size != 1000 {
		t.Fatalf("Summary = %+v, %v", got, err)
	}
	// Older summaries do not replace newer ones.
	if err := s.PutSummary("a", core.Summary{OpID: OpID(1), Key: "k", Bytes: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Summary("a", "k"); string(got.Bytes) != "mean=3.2" {
		t.Fatal("older summary replaced a newer one")
	}
	mustApply(t, s, "a", Header(OpID(2), edgesync.StateOp, "k", d), d)
	if got, _ := s.Summary("a", "k"); !got.Superseded {
		t.Fatal("summary not superseded by its data")
	}
	// A summary arriving after its data is stored superseded.
	mustApply(t, s, "a", Header(OpID(5), edgesync.StateOp, "j", d), d)
	if err := s.PutSummary("a", core.Summary{OpID: OpID(5), Key: "j"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Summary("a", "j"); !got.Superseded {
		t.Fatal("late summary not marked superseded")
	}
	// An event's summary, superseded once the event is stored.
	if err := s.PutSummary("a", core.Summary{OpID: OpID(6), Key: "log", Bytes: []byte("3 alarms")}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Summary("a", "log"); got.Superseded {
		t.Fatal("summary of an event not stored yet is superseded")
	}
	mustApply(t, s, "a", Header(OpID(6), edgesync.EventOp, "log", d), d)
	if got, _ := s.Summary("a", "log"); !got.Superseded {
		t.Fatal("summary not superseded by its event")
	}
	if err := s.PutSummary("a", core.Summary{OpID: OpID(7), Key: "j", Bytes: make([]byte, 101)}); !errors.Is(err, core.ErrTooLarge) {
		t.Fatalf("big summary: %v", err)
	}
	list, err := s.Summaries("a", "", 0)
	if err != nil || len(list) != 3 || list[0].Key != "j" || list[1].Key != "k" {
		t.Fatalf("Summaries = %+v, %v", list, err)
	}
	if list, _ := s.Summaries("a", "k", 0); len(list) != 1 {
		t.Fatalf("Summaries(k) = %+v", list)
	}
	if st := agentStats(t, s, "a"); st.Summaries != 3 {
		t.Fatalf("summaries stat %d", st.Summaries)
	}
}

func testInvalidArguments(t *testing.T, h Harness) {
	s := h.Open(t, core.Config{MaxObjectSize: 1000})
	d := Payload(1, 10)
	good := Header(OpID(1), edgesync.StateOp, "k", d)
	cases := map[string]struct {
		agent string
		h     core.PartialHeader
		want  error
	}{
		"empty agent":   {"", good, core.ErrInvalid},
		"zero id":       {"a", func() core.PartialHeader { h := good; h.OpID = edgesync.OpID{}; return h }(), core.ErrInvalid},
		"bad kind":      {"a", func() core.PartialHeader { h := good; h.Kind = 9; return h }(), core.ErrInvalid},
		"bad priority":  {"a", func() core.PartialHeader { h := good; h.Priority = 6; return h }(), core.ErrInvalid},
		"no key":        {"a", func() core.PartialHeader { h := good; h.Key = ""; return h }(), core.ErrInvalid},
		"long key":      {"a", func() core.PartialHeader { h := good; h.Key = string(make([]byte, core.MaxKeyLen+1)); return h }(), core.ErrTooLarge},
		"too big":       {"a", func() core.PartialHeader { h := good; h.Size = 1001; return h }(), core.ErrTooLarge},
		"event w/ base": {"a", func() core.PartialHeader { h := good; h.Kind = edgesync.EventOp; h.HasBase = true; return h }(), core.ErrInvalid},
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

func testClosed(t *testing.T, h Harness) {
	t.Run("staged", func(t *testing.T) { testClosedCfg(t, h, core.Config{InlineMax: 5}, true) })
	t.Run("inline", func(t *testing.T) { testClosedCfg(t, h, core.Config{}, h.LazyObjects) })
}

// testClosedCfg: after Close every call fails with ErrClosed, the reads
// of an Object opened before too where readAfterClose.
func testClosedCfg(t *testing.T, h Harness, cfg core.Config, readAfterClose bool) {
	s := h.Open(t, cfg)
	d := Payload(1, 10)
	mustApply(t, s, "a", Header(OpID(1), edgesync.StateOp, "k", d), d)
	_, o, _ := s.Current("a", "k")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Apply("a", Header(OpID(2), edgesync.StateOp, "k", d), bytes.NewReader(d)); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
	if _, _, err := s.Current("a", "k"); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Current after Close: %v", err)
	}
	if _, err := o.ReadAt(make([]byte, 1), 0); readAfterClose && !errors.Is(err, core.ErrClosed) {
		t.Fatalf("ReadAt after Close: %v", err)
	}
	if _, err := s.Stats(); !errors.Is(err, core.ErrClosed) {
		t.Fatalf("Stats after Close: %v", err)
	}
	if _, ok := s.PartialSize("a", OpID(1)); ok {
		t.Fatal("PartialSize after Close reported a partial")
	}
}

func testConcurrentApply(t *testing.T, h Harness) {
	s := h.Open(t, core.Config{})
	var wg sync.WaitGroup
	errs := make(chan error, 4*25)
	for g := range 4 {
		wg.Go(func() {
			for i := range 25 {
				// Every goroutine sends the same 25 ops: each is applied once.
				d := Payload(uint64(i), 100+g)
				d = d[:100]
				hd := Header(OpID(uint64(i+1)), edgesync.EventOp, "e", d)
				if _, err := s.Apply("a", hd, bytes.NewReader(d)); err != nil {
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

func testSmallWrites(t *testing.T, h Harness) {
	s := h.Open(t, core.Config{ChunkSize: 1000, InlineMax: 1000})
	data := Payload(8, 5500)
	hd := Header(OpID(1), edgesync.StateOp, "k", data)
	if _, _, err := s.BeginPartial("a", hd); err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(data); off += 100 {
		if err := s.WritePartial("a", hd.OpID, int64(off), data[off:min(off+100, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	checkChunks(t, h, s, "a", 6) // 55 writes of 100 bytes in chunks of 1000
	if _, err := s.CommitPartial("a", hd.OpID); err != nil {
		t.Fatal(err)
	}
	if _, got := mustGet(t, s, "a", "k"); !bytes.Equal(got, data) {
		t.Fatal("data written in small pieces differs")
	}
}

// testOlderVersionNeverReplacesNewer: versions of a key that arrive out
// of order (the newer committed first) leave the newer one current, and
// the older op is recorded as applied so that its redelivery is
// acknowledged.
func testOlderVersionNeverReplacesNewer(t *testing.T, h Harness) {
	s := h.Open(t, core.Config{})
	older, newer := Payload(1, 3000), Payload(2, 5000)
	hOld := Header(OpID(10), edgesync.StateOp, "k", older)
	hNew := Header(OpID(11), edgesync.StateOp, "k", newer)
	mustApply(t, s, "a", hNew, newer)
	res := mustApply(t, s, "a", hOld, older)
	if !res.Stale || res.Duplicate {
		t.Fatalf("older version applied after a newer one: %+v", res)
	}
	v, got := mustGet(t, s, "a", "k")
	if v.OpID != hNew.OpID || !bytes.Equal(got, newer) {
		t.Fatalf("current is %s (%d bytes), want the newer version", v.OpID, len(got))
	}
	if ok, err := s.Applied("a", hOld.OpID); !ok || err != nil {
		t.Fatalf("older op not recorded as applied: %v %v", ok, err)
	}
	if res := mustApply(t, s, "a", hOld, older); !res.Duplicate {
		t.Fatalf("redelivery of the older op not a duplicate: %+v", res)
	}
	if b := agentStats(t, s, "a").Bytes; b != int64(len(newer)) {
		t.Fatalf("stored bytes %d, want %d (the stale data must not count)", b, len(newer))
	}
}

// testNames: agent names and keys with every kind of character (those
// special to NATS subjects included), empty event keys and the longest
// keys are stored, listed and read back as they were given.
func testNames(t *testing.T, h Harness) {
	s := h.Open(t, core.Config{InlineMax: 64})
	agents := []string{"ship.7", "a b*>=", "Ωmega/=2E", strings.Repeat("n", core.MaxAgentNameLen)}
	keys := []string{"sensors/pump-3", "a.b", "x y", "*", ">", "=2E", "é", "..", "/", strings.Repeat("k.", core.MaxKeyLen/2)}
	n := uint64(1)
	for _, agent := range agents {
		for i, key := range keys {
			d := Payload(n, 10+100*(i%2)) // inline and staged
			mustApply(t, s, agent, Header(OpID(n), edgesync.StateOp, key, d), d)
			n++
			mustApply(t, s, agent, Header(OpID(n), edgesync.EventOp, key, d), d)
			n++
		}
		e := Payload(n, 5)
		mustApply(t, s, agent, Header(OpID(n), edgesync.EventOp, "", e), e)
		n++
	}
	got, err := s.Agents()
	if err != nil || len(got) != len(agents) {
		t.Fatalf("Agents = %q, %v", got, err)
	}
	n = 1
	for _, agent := range agents {
		vs, err := s.Keys(agent, "", 0)
		if err != nil || len(vs) != len(keys) {
			t.Fatalf("agent %q: %d keys, %v", agent, len(vs), err)
		}
		evs, err := s.Events(agent, 0, 0)
		if err != nil || len(evs) != len(keys)+1 {
			t.Fatalf("agent %q: %d events, %v", agent, len(evs), err)
		}
		for i, key := range keys {
			d := Payload(n, 10+100*(i%2))
			if v, data := mustGet(t, s, agent, key); v.Key != key || !bytes.Equal(data, d) {
				t.Fatalf("agent %q key %q: got key %q, data equal %v", agent, key, v.Key, bytes.Equal(data, d))
			}
			n++
			ev := evs[i]
			_, o, err := s.EventData(agent, ev.Seq)
			if err != nil || ev.Key != key || ev.OpID != OpID(n) || !bytes.Equal(readAll(t, o), d) {
				t.Fatalf("agent %q event %d: key %q op %s, %v", agent, i, ev.Key, ev.OpID, err)
			}
			n++
		}
		if last := evs[len(evs)-1]; last.Key != "" || last.Size != 5 {
			t.Fatalf("agent %q: event without a key came back as %+v", agent, last)
		}
		n++
		if vs, _ := s.Keys(agent, "sensors/", 0); len(vs) != 1 || vs[0].Key != "sensors/pump-3" {
			t.Fatalf("agent %q: keys under sensors/: %+v", agent, vs)
		}
	}
}
