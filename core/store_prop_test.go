package core

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"path/filepath"
	"slices"
	"testing"

	"pgregory.net/rapid"

	edgesync "github.com/edge-sync/edge-sync"
)

// model is what the store should hold, kept in plain maps.
type model struct {
	state    map[string][]byte
	versions map[string]uint64
	events   [][]byte
	applied  map[edgesync.OpID]PartialHeader
	payloads map[edgesync.OpID][]byte
	partials map[edgesync.OpID]*modelPartial
	stateID  map[string]edgesync.OpID // op that wrote each key's current version
}

type modelPartial struct {
	hdr  PartialHeader
	data []byte
	held int
	// reserved is what the partial counts against the quota: its size
	// while received, what it holds once released or reopened.
	reserved int
}

// TestStoreModel runs random sequences of applies, redeliveries, partial
// writes, commits, deltas and restarts against a real store and checks it
// against the model after every step.
func TestStoreModel(t *testing.T) {
	// Every step fsyncs, so rapid's default of 100 runs takes most of a
	// minute under -race; run 25 unless -rapid.checks was given.
	if f := flag.Lookup("rapid.checks"); f != nil && !flagGiven("rapid.checks") {
		old := f.Value.String()
		_ = f.Value.Set("25")
		t.Cleanup(func() { _ = f.Value.Set(old) })
	}
	cfg := Config{ChunkSize: 700, InlineMax: 2048}
	rapid.Check(t, func(rt *rapid.T) {
		path := filepath.Join(t.TempDir(), "prop.db")
		s, err := Open(path, cfg)
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { _ = s.Close() }()
		m := &model{state: map[string][]byte{}, versions: map[string]uint64{}, applied: map[edgesync.OpID]PartialHeader{},
			payloads: map[edgesync.OpID][]byte{}, partials: map[edgesync.OpID]*modelPartial{}, stateID: map[string]edgesync.OpID{}}
		next := uint64(1)
		newOp := func(rt *rapid.T, kind edgesync.OpKind) (PartialHeader, []byte) {
			data := rapid.SliceOfN(rapid.Byte(), 0, 5000).Draw(rt, "data")
			key := rapid.SampledFrom([]string{"a", "b", "c/1"}).Draw(rt, "key")
			if kind == edgesync.EventOp {
				key = "log"
			}
			h := hdrFor(opID(next), kind, key, data)
			h.Priority = edgesync.Priority(rapid.IntRange(0, 5).Draw(rt, "prio"))
			next++
			return h, data
		}
		commitModel := func(h PartialHeader, data []byte) Result {
			m.applied[h.OpID] = h
			m.payloads[h.OpID] = data
			if h.Kind == edgesync.EventOp {
				m.events = append(m.events, data)
				return Result{Seq: uint64(len(m.events))}
			}
			if cur, ok := m.stateID[h.Key]; ok && cur.Compare(h.OpID) > 0 {
				// An older version committed after a newer one: kept out.
				return Result{Version: m.versions[h.Key], Stale: true}
			}
			m.state[h.Key] = data
			m.stateID[h.Key] = h.OpID
			m.versions[h.Key]++
			return Result{Version: m.versions[h.Key]}
		}
		agent := "site"

		rt.Repeat(map[string]func(*rapid.T){
			"apply": func(rt *rapid.T) {
				kind := rapid.SampledFrom([]edgesync.OpKind{edgesync.StateOp, edgesync.EventOp}).Draw(rt, "kind")
				h, data := newOp(rt, kind)
				res, err := s.Apply(agent, h, bytes.NewReader(data))
				if err != nil {
					rt.Fatalf("apply: %v", err)
				}
				want := commitModel(h, data)
				if res.Duplicate || res.Version != want.Version || res.Seq != want.Seq {
					rt.Fatalf("apply result %+v, want version %d seq %d", res, want.Version, want.Seq)
				}
			},
			"delta": func(rt *rapid.T) {
				h, data := newOp(rt, edgesync.StateOp)
				cur, ok := m.state[h.Key]
				right := rapid.Bool().Draw(rt, "rightBase")
				h.HasBase = true
				h.BaseHash = sha256.Sum256(cur)
				if !right {
					h.BaseHash[0] ^= 1
				}
				_, err := s.Apply(agent, h, bytes.NewReader(data))
				if ok && right {
					if err != nil {
						rt.Fatalf("delta with right base: %v", err)
					}
					commitModel(h, data)
				} else if !errors.Is(err, ErrBaseMismatch) {
					rt.Fatalf("delta with wrong or missing base: %v", err)
				}
			},
			"redeliver": func(rt *rapid.T) {
				if len(m.applied) == 0 {
					rt.Skip("nothing applied yet")
				}
				ids := slices.SortedFunc(mapsKeys(m.applied), edgesync.OpID.Compare)
				id := rapid.SampledFrom(ids).Draw(rt, "id")
				res, err := s.Apply(agent, m.applied[id], bytes.NewReader(m.payloads[id]))
				if err != nil || !res.Duplicate {
					rt.Fatalf("redelivery of %s: %+v, %v", id, res, err)
				}
			},
			"begin": func(rt *rapid.T) {
				kind := rapid.SampledFrom([]edgesync.OpKind{edgesync.StateOp, edgesync.EventOp}).Draw(rt, "kind")
				h, data := newOp(rt, kind)
				held, dup, err := s.BeginPartial(agent, h)
				if err != nil || dup || held != 0 {
					rt.Fatalf("begin: %d %v %v", held, dup, err)
				}
				m.partials[h.OpID] = &modelPartial{hdr: h, data: data, reserved: int(h.Size)}
			},
			"release": func(rt *rapid.T) {
				p := pickPartial(rt, m)
				if err := s.ReleasePartial(agent, p.hdr.OpID); err != nil {
					rt.Fatalf("release: %v", err)
				}
				p.reserved = p.held
			},
			"resume": func(rt *rapid.T) {
				p := pickPartial(rt, m)
				held, dup, err := s.BeginPartial(agent, p.hdr)
				if err != nil || dup || held != int64(p.held) {
					rt.Fatalf("resume: %d %v %v; want %d held", held, dup, err, p.held)
				}
				p.reserved = int(p.hdr.Size)
			},
			"write": func(rt *rapid.T) {
				p := pickPartial(rt, m)
				n := rapid.IntRange(0, len(p.data)-p.held).Draw(rt, "n")
				off := p.held
				if rapid.IntRange(0, 9).Draw(rt, "wrongOffset") == 0 {
					off += rapid.IntRange(1, 10).Draw(rt, "skew")
					if err := s.WritePartial(agent, p.hdr.OpID, int64(off), p.data[p.held:p.held+n]); !errors.Is(err, ErrOutOfOrder) {
						rt.Fatalf("write at wrong offset: %v", err)
					}
					return
				}
				if err := s.WritePartial(agent, p.hdr.OpID, int64(off), p.data[off:off+n]); err != nil {
					rt.Fatalf("write: %v", err)
				}
				p.held += n
				p.reserved = max(p.reserved, p.held)
			},
			"commit": func(rt *rapid.T) {
				p := pickPartial(rt, m)
				res, err := s.CommitPartial(agent, p.hdr.OpID)
				if p.held < len(p.data) {
					if !errors.Is(err, ErrIncomplete) {
						rt.Fatalf("commit of incomplete partial: %v", err)
					}
					return
				}
				if err != nil {
					rt.Fatalf("commit: %v", err)
				}
				want := commitModel(p.hdr, p.data)
				if res.Version != want.Version || res.Seq != want.Seq || res.Stale != want.Stale {
					rt.Fatalf("commit result %+v, want %+v", res, want)
				}
				delete(m.partials, p.hdr.OpID)
			},
			"reopen": func(rt *rapid.T) {
				if err := s.Close(); err != nil {
					rt.Fatal(err)
				}
				if s, err = Open(path, cfg); err != nil {
					rt.Fatalf("reopen: %v", err)
				}
				for _, p := range m.partials { // no receive survives a restart
					p.reserved = p.held
				}
			},
			"": func(rt *rapid.T) { checkModel(rt, s, agent, m) },
		})
	})
}

func flagGiven(name string) bool {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

func mapsKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func pickPartial(rt *rapid.T, m *model) *modelPartial {
	if len(m.partials) == 0 {
		rt.Skip("no partial ops")
	}
	ids := slices.SortedFunc(mapsKeys(m.partials), edgesync.OpID.Compare)
	return m.partials[rapid.SampledFrom(ids).Draw(rt, "partial")]
}

func checkModel(rt *rapid.T, s *Store, agent string, m *model) {
	if len(m.applied) == 0 && len(m.partials) == 0 {
		return
	}
	keys, err := s.Keys(agent, "", 0)
	if err != nil {
		rt.Fatal(err)
	}
	if len(keys) != len(m.state) {
		rt.Fatalf("%d keys, model has %d", len(keys), len(m.state))
	}
	var bytesWant int64
	for _, v := range keys {
		want := m.state[v.Key]
		_, o, err := s.Get(agent, v.Key)
		if err != nil {
			rt.Fatal(err)
		}
		got := make([]byte, o.Size())
		if _, err := o.ReadAt(got, 0); err != nil && len(got) > 0 {
			rt.Fatalf("read %q: %v", v.Key, err)
		}
		if !bytes.Equal(got, want) || v.Version != m.versions[v.Key] {
			rt.Fatalf("key %q: version %d (model %d), data equal %v", v.Key, v.Version, m.versions[v.Key], bytes.Equal(got, want))
		}
		bytesWant += int64(len(want))
	}
	evs, err := s.Events(agent, 0, 0)
	if err != nil {
		rt.Fatal(err)
	}
	if len(evs) != len(m.events) {
		rt.Fatalf("%d events, model has %d", len(evs), len(m.events))
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) || e.Hash != sha256.Sum256(m.events[i]) {
			rt.Fatalf("event %d: seq %d, hash differs", i, e.Seq)
		}
		bytesWant += e.Size
	}
	var reserved int64
	for id, p := range m.partials {
		held, ok := s.PartialSize(agent, id)
		if !ok || held != int64(p.held) {
			rt.Fatalf("partial %s: held %d %v, model %d", id, held, ok, p.held)
		}
		reserved += int64(p.reserved)
	}
	st, err := s.Stats()
	if err != nil {
		rt.Fatal(err)
	}
	a := st.ByAgent[agent]
	if a.Bytes != bytesWant || a.Reserved != reserved || a.Keys != int64(len(m.state)) || a.Applied != int64(len(m.applied)) {
		rt.Fatalf("stats %+v; model bytes %d reserved %d keys %d applied %d", a, bytesWant, reserved, len(m.state), len(m.applied))
	}
}
