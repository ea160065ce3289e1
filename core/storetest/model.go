package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"slices"
	"testing"

	"pgregory.net/rapid"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
)

// model is what the store should hold, kept in plain maps.
type model struct {
	state    map[string][]byte
	versions map[string]uint64
	events   [][]byte
	applied  map[edgesync.OpID]core.PartialHeader
	payloads map[edgesync.OpID][]byte
	partials map[edgesync.OpID]*modelPartial
	stateID  map[string]edgesync.OpID // op that wrote each key's current version
	seqs     []uint64                 // the store's numbers of the events
}

type modelPartial struct {
	hdr      core.PartialHeader
	data     []byte
	held     int
	released bool // reserves only what it holds (ReleasePartial, Harness.ReleaseOnReopen)
}

// testModel runs random sequences of applies, redeliveries, partial
// writes, releases, resumes, commits, deltas and restarts against a real store and checks it
// against the model after every step.
func testModel(t *testing.T, h Harness) {
	// Every step is durable (fsync, or a JetStream round trip), so
	// rapid's default of 100 runs takes most of a minute under -race; run
	// 25 unless -rapid.checks was given.
	if f := flag.Lookup("rapid.checks"); f != nil && !flagGiven("rapid.checks") {
		old := f.Value.String()
		_ = f.Value.Set("25")
		t.Cleanup(func() { _ = f.Value.Set(old) })
	}
	cfg := core.Config{ChunkSize: 700, InlineMax: 2048}
	rapid.Check(t, func(rt *rapid.T) {
		s := h.Open(t, cfg)
		m := &model{state: map[string][]byte{}, versions: map[string]uint64{}, applied: map[edgesync.OpID]core.PartialHeader{},
			payloads: map[edgesync.OpID][]byte{}, partials: map[edgesync.OpID]*modelPartial{}, stateID: map[string]edgesync.OpID{}}
		next := uint64(1)
		newOp := func(rt *rapid.T, kind edgesync.OpKind) (core.PartialHeader, []byte) {
			data := rapid.SliceOfN(rapid.Byte(), 0, 5000).Draw(rt, "data")
			key := rapid.SampledFrom([]string{"a", "b", "c/1"}).Draw(rt, "key")
			if kind == edgesync.EventOp {
				key = "log"
			}
			hd := Header(OpID(next), kind, key, data)
			hd.Priority = edgesync.Priority(rapid.IntRange(0, 5).Draw(rt, "prio"))
			next++
			return hd, data
		}
		// commitModel applies an op to the model and returns what the
		// store should answer; for an event, checkSeq checks its number.
		commitModel := func(hd core.PartialHeader, data []byte) core.Result {
			m.applied[hd.OpID] = hd
			m.payloads[hd.OpID] = data
			if hd.Kind == edgesync.EventOp {
				m.events = append(m.events, data)
				return core.Result{Seq: uint64(len(m.events))}
			}
			if cur, ok := m.stateID[hd.Key]; ok && cur.Compare(hd.OpID) > 0 {
				// An older version committed after a newer one: kept out.
				return core.Result{Version: m.versions[hd.Key], Stale: true}
			}
			m.state[hd.Key] = data
			m.stateID[hd.Key] = hd.OpID
			m.versions[hd.Key]++
			return core.Result{Version: m.versions[hd.Key]}
		}
		checkResult := func(rt *rapid.T, what string, hd core.PartialHeader, res, want core.Result) {
			if hd.Kind == edgesync.EventOp {
				if h.DenseSeq && res.Seq != want.Seq || len(m.seqs) > 0 && res.Seq <= m.seqs[len(m.seqs)-1] {
					rt.Fatalf("%s: event seq %d after %v, model %d", what, res.Seq, m.seqs, want.Seq)
				}
				m.seqs = append(m.seqs, res.Seq)
				return
			}
			if res.Version != want.Version || res.Stale != want.Stale {
				rt.Fatalf("%s result %+v, want version %d stale %v", what, res, want.Version, want.Stale)
			}
		}
		agent := "site"

		rt.Repeat(map[string]func(*rapid.T){
			"apply": func(rt *rapid.T) {
				kind := rapid.SampledFrom([]edgesync.OpKind{edgesync.StateOp, edgesync.EventOp}).Draw(rt, "kind")
				hd, data := newOp(rt, kind)
				res, err := s.Apply(agent, hd, bytes.NewReader(data))
				if err != nil {
					rt.Fatalf("apply: %v", err)
				}
				if res.Duplicate {
					rt.Fatalf("apply of a new op: %+v", res)
				}
				checkResult(rt, "apply", hd, res, commitModel(hd, data))
			},
			"delta": func(rt *rapid.T) {
				hd, data := newOp(rt, edgesync.StateOp)
				cur, ok := m.state[hd.Key]
				right := rapid.Bool().Draw(rt, "rightBase")
				hd.HasBase = true
				hd.BaseHash = sha256.Sum256(cur)
				if !right {
					hd.BaseHash[0] ^= 1
				}
				_, err := s.Apply(agent, hd, bytes.NewReader(data))
				if ok && right {
					if err != nil {
						rt.Fatalf("delta with right base: %v", err)
					}
					commitModel(hd, data)
				} else if !errors.Is(err, core.ErrBaseMismatch) {
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
				hd, data := newOp(rt, kind)
				held, dup, err := s.BeginPartial(agent, hd)
				if err != nil || dup || held != 0 {
					rt.Fatalf("begin: %d %v %v", held, dup, err)
				}
				m.partials[hd.OpID] = &modelPartial{hdr: hd, data: data}
			},
			"release": func(rt *rapid.T) {
				r, ok := s.(core.PartialReleaser)
				if !ok {
					rt.Skip("the store keeps the declared size reserved")
				}
				p := pickPartial(rt, m)
				if err := r.ReleasePartial(agent, p.hdr.OpID); err != nil {
					rt.Fatalf("release: %v", err)
				}
				p.released = true
			},
			"resume": func(rt *rapid.T) {
				p := pickPartial(rt, m)
				held, dup, err := s.BeginPartial(agent, p.hdr)
				if err != nil || dup || held != int64(p.held) {
					rt.Fatalf("resume: %d %v %v; want %d held", held, dup, err, p.held)
				}
				p.released = false // received again: its declared size is reserved
			},
			"write": func(rt *rapid.T) {
				p := pickPartial(rt, m)
				n := rapid.IntRange(0, len(p.data)-p.held).Draw(rt, "n")
				off := p.held
				if rapid.IntRange(0, 9).Draw(rt, "wrongOffset") == 0 {
					off += rapid.IntRange(1, 10).Draw(rt, "skew")
					if err := s.WritePartial(agent, p.hdr.OpID, int64(off), p.data[p.held:p.held+n]); !errors.Is(err, core.ErrOutOfOrder) {
						rt.Fatalf("write at wrong offset: %v", err)
					}
					return
				}
				if err := s.WritePartial(agent, p.hdr.OpID, int64(off), p.data[off:off+n]); err != nil {
					rt.Fatalf("write: %v", err)
				}
				p.held += n
			},
			"commit": func(rt *rapid.T) {
				p := pickPartial(rt, m)
				res, err := s.CommitPartial(agent, p.hdr.OpID)
				if p.held < len(p.data) {
					if !errors.Is(err, core.ErrIncomplete) {
						rt.Fatalf("commit of incomplete partial: %v", err)
					}
					return
				}
				if err != nil {
					rt.Fatalf("commit: %v", err)
				}
				checkResult(rt, "commit", p.hdr, res, commitModel(p.hdr, p.data))
				delete(m.partials, p.hdr.OpID)
			},
			"reopen": func(rt *rapid.T) {
				s = h.Reopen(t, s, cfg)
				for _, p := range m.partials {
					p.released = h.ReleaseOnReopen
				}
				if h.MemoryPartials {
					// Small partial ops were in the closed store's memory.
					for id, p := range m.partials {
						if p.hdr.Size <= cfg.InlineMax {
							delete(m.partials, id)
						}
					}
				}
			},
			"fold": func(rt *rapid.T) {
				if h.Fold == nil {
					rt.Skip("the store has no journal")
				}
				h.Fold(t, s)
			},
			"": func(rt *rapid.T) {
				// The checks read events, which folds a journal: a store
				// with one is checked after some steps only, so that its
				// journal holds ops across steps (resends, partials and
				// state ops of an agent with journaled events).
				if h.Fold != nil && !rapid.Bool().Draw(rt, "check") {
					return
				}
				checkModel(rt, s, agent, m)
			},
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

func checkModel(rt *rapid.T, s Store, agent string, m *model) {
	if len(m.applied) == 0 && len(m.partials) == 0 {
		return
	}
	keys, err := s.Keys(agent, "", 0)
	if err != nil && !(errors.Is(err, core.ErrNotFound) && len(m.state) == 0) {
		rt.Fatal(err)
	}
	if len(keys) != len(m.state) {
		rt.Fatalf("%d keys, model has %d", len(keys), len(m.state))
	}
	var bytesWant int64
	for _, v := range keys {
		want := m.state[v.Key]
		_, o, err := s.Current(agent, v.Key)
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
	if err != nil && !(errors.Is(err, core.ErrNotFound) && len(m.events) == 0) {
		rt.Fatal(err)
	}
	if len(evs) != len(m.events) {
		rt.Fatalf("%d events, model has %d", len(evs), len(m.events))
	}
	for i, e := range evs {
		if e.Seq != m.seqs[i] || e.Hash != sha256.Sum256(m.events[i]) {
			rt.Fatalf("event %d: seq %d (model %d), hash differs", i, e.Seq, m.seqs[i])
		}
		bytesWant += e.Size
	}
	var reserved int64
	for id, p := range m.partials {
		held, ok := s.PartialSize(agent, id)
		if !ok || held != int64(p.held) {
			rt.Fatalf("partial %s: held %d %v, model %d", id, held, ok, p.held)
		}
		if p.released {
			reserved += int64(p.held)
		} else {
			reserved += p.hdr.Size
		}
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
