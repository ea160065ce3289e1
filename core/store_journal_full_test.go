package core

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	berrors "go.etcd.io/bbolt/errors"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestJournalReadsOnAFullDisk: on a disk too full for a fold, the events
// waiting in the journal are still read (Events, EventData), counted
// (Stats) and the store opens again: the fold a read needs is written
// when there is room, but what the read sees does not wait for it. Before
// the journal, reads needed no room at all; a read that fails because
// its fold cannot be written would stop `core ls`, `core get` and `tail
// --follow` exactly when the operator looks at the core, and an Open that
// fails would keep the core down until room is made. Once there is room
// the entries fold, each exactly once, byte-identical.
func TestJournalReadsOnAFullDisk(t *testing.T) {
	const agents, perAgent = 20, 30
	cfg := Config{foldOff: true, maxFileSize: 2 << 20}
	s, path, data := fullJournalStore(t, cfg, agents, perAgent)

	check := func(s *Store, when string) {
		t.Helper()
		for i := range agents {
			agent := fmt.Sprint("a", i)
			evs, err := s.Events(agent, 0, 0)
			if err != nil {
				t.Fatalf("%s: events of %s: %v", when, agent, err)
			}
			if len(evs) != len(data[agent]) {
				t.Fatalf("%s: %d events of %s, want %d", when, len(evs), agent, len(data[agent]))
			}
			for j, e := range evs {
				_, o, err := s.EventData(agent, e.Seq)
				if err != nil {
					t.Fatalf("%s: event %d of %s: %v", when, e.Seq, agent, err)
				}
				if e.Seq != uint64(j+1) || !bytes.Equal(readAll(t, o), data[agent][j]) {
					t.Fatalf("%s: event %d of %s: seq %d or its bytes differ from op %d's", when, j, agent, e.Seq, j)
				}
			}
		}
		st, err := s.Stats()
		if err != nil {
			t.Fatalf("%s: stats: %v", when, err)
		}
		if a := st.ByAgent["a0"]; a.Events != perAgent+1 || a.Applied != perAgent+1 {
			t.Fatalf("%s: a0's stats %+v, want %d events and applied", when, a, perAgent+1)
		}
	}
	check(s, "full disk")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, cfg)
	if err != nil {
		t.Fatalf("open on the full disk: %v", err)
	}
	check(s, "reopened on the full disk")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, path) // room again: Open folds
	if got := journalLen(t, s); got != 0 {
		t.Fatalf("%d journal entries once there is room, want 0", got)
	}
	check(s, "with room")
}

// TestJournalFullDiskFoldBacksOff: the store's goroutine tries a fold
// that found no room again after foldMaxAge, not at every quiet tick
// (0.5 s). A failed fold of a large journal holds the write lock for as
// long as a fold that succeeds (0.5-2.6 s for 30,000 entries on a 2-vCPU
// machine, seen on a full tmpfs) and then reads the journal's index
// again: tried at every tick, it kept the store's writes and the reads
// that fold (core ls, tail --follow) waiting most of the time, for as
// long as the disk stayed full.
func TestJournalFullDiskFoldBacksOff(t *testing.T) {
	cfg := Config{foldOff: true, maxFileSize: 2 << 20}
	s, path, _ := fullJournalStore(t, cfg, 20, 30)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	cfg.foldOff = false // the store's goroutine folds
	start := time.Now()
	s, err := Open(path, cfg)
	if err != nil {
		t.Fatalf("open on the full disk: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	const ticks = 8 // 4 s: within foldMaxAge of the first try
	testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("%d ticks of the fold goroutine", ticks), func() bool {
		return s.jnl.ticks.Load() >= ticks
	})
	// One try, and one more per foldMaxAge that passed (a loaded machine
	// can space the ticks out), against one per tick.
	if n, most := s.jnl.tries.Load(), 1+int64(time.Since(start)/foldMaxAge); n > most {
		t.Fatalf("%d folds tried in %d quiet ticks (%v) on a full disk, want at most %d", n, ticks, time.Since(start).Round(time.Millisecond), most)
	}
	if got := journalLen(t, s); got != 20*30 {
		t.Fatalf("%d journal entries, want them all (%d)", got, 20*30)
	}
}

// fullJournalStore returns a store of cfg (foldOff, maxFileSize) whose
// journal holds perAgent small events of each of agents agents (a0...,
// each with one event in its buckets before them) and whose file is
// then filled to its cap, so that a fold of the journal finds no room;
// and the data of each agent's events, in order.
func fullJournalStore(t *testing.T, cfg Config, agents, perAgent int) (*Store, string, map[string][][]byte) {
	t.Helper()
	s, path := openTest(t, cfg)
	data := map[string][][]byte{}
	for i := range agents {
		agent := fmt.Sprint("a", i)
		d := payload(uint64(10_000+i), 10)
		mustApply(t, s, agent, hdrFor(opID(uint64(10_000+i)), edgesync.EventOp, "log", d), d) // its buckets
		data[agent] = append(data[agent], d)
	}
	n := uint64(1)
	for range perAgent {
		for i := range agents {
			agent := fmt.Sprint("a", i)
			d := payload(n, 300)
			mustApply(t, s, agent, hdrFor(opID(n), edgesync.EventOp, "log", d), d)
			data[agent] = append(data[agent], d)
			n++
		}
	}
	if got := journalLen(t, s); got != agents*perAgent {
		t.Fatalf("%d journal entries, want %d", got, agents*perAgent)
	}
	// Fill the file to its cap with another agent's state, down to ops
	// of 100 bytes.
	k := uint64(0)
	for _, size := range []int{256 << 10, 16 << 10, 1 << 10, 100} {
		for fails := 0; fails < 3; k++ {
			d := payload(1<<40+k, size)
			if _, err := s.ApplyWhole("filler", hdrFor(opID(1<<40+k), edgesync.StateOp, fmt.Sprint("k", k), d), d); err != nil {
				if !errors.Is(err, berrors.ErrMaxSizeReached) {
					t.Fatalf("filling: %v", err)
				}
				fails++
			}
		}
	}
	if err := s.Fold(); !errors.Is(err, berrors.ErrMaxSizeReached) {
		t.Fatalf("fold on the full disk: %v, want ErrMaxSizeReached", err)
	}
	return s, path, data
}
