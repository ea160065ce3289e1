package core

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

const (
	crashChildEnv   = "EDGE_SYNC_STORE_CRASH_CHILD"
	crashStartEnv   = "EDGE_SYNC_STORE_CRASH_START"
	crashWorkersEnv = "EDGE_SYNC_STORE_CRASH_WORKERS"
	crashJournalEnv = "EDGE_SYNC_STORE_CRASH_JOURNAL"
	crashOpsEnv     = "EDGE_SYNC_STORE_CRASH_OPS"
)

// crashJournalOp is op i of the journal's crash workload: small events,
// which go to the journal (store_journal.go).
func crashJournalOp(i int) (PartialHeader, []byte, bool) {
	data := payload(uint64(i), 1+(i*7919)%inlineDataMax)
	return hdrFor(opID(uint64(i)), edgesync.EventOp, "log", data), data, false
}

// crashOpOf returns crashOp, or crashJournalOp for the journal's workload.
func crashOpOf(journal bool) func(int) (PartialHeader, []byte, bool) {
	if journal {
		return crashJournalOp
	}
	return crashOp
}

// crashCfg makes ops of a few MiB take the staged path.
var crashCfg = Config{ChunkSize: 64 << 10, InlineMax: 1 << 20}

// crashOp describes op i of the crash workload: every third is an event,
// the rest state ops on their own key; every tenth is 3 MiB (staged),
// every seventh goes through BeginPartial/WritePartial/CommitPartial in
// 256 KiB pieces, resuming whatever a killed predecessor left.
func crashOp(i int) (PartialHeader, []byte, bool) {
	size := 1 + (i*7919)%20_000
	if i%10 == 0 {
		size = 3 << 20
	}
	data := payload(uint64(i), size)
	kind, key := edgesync.StateOp, "k/"+strconv.Itoa(i)
	if i%3 == 0 {
		kind, key = edgesync.EventOp, "log"
	}
	return hdrFor(opID(uint64(i)), kind, key, data), data, i%7 == 0
}

// crashChild runs in a re-executed test binary: it applies ops from
// $START on and prints "ok I DUP" after each returns, until killed. With
// $WORKERS > 1 as many goroutines apply ops at once (the next op each,
// the small ones whole, as the server does), so that their writes share
// transactions (store_group.go).
func crashChild() {
	cfg := crashCfg
	journal := os.Getenv(crashJournalEnv) != ""
	// The journal's workload keeps what it acknowledged in the journal
	// until the kill: nothing folds it in the background.
	cfg.foldOff = journal
	s, err := Open(os.Getenv(crashChildEnv), cfg)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	start, _ := strconv.Atoi(os.Getenv(crashStartEnv))
	workers, _ := strconv.Atoi(os.Getenv(crashWorkersEnv))
	per, _ := strconv.Atoi(os.Getenv(crashOpsEnv))
	fmt.Println("open")
	var next atomic.Int64
	next.Store(int64(start))
	var wg sync.WaitGroup
	for range max(1, workers) {
		wg.Go(func() {
			if per > 1 {
				// per ops at once, as the server applies a stream of
				// several (ApplyWholeOps).
				for i := int(next.Add(int64(per)) - int64(per)); i < start+100_000; i = int(next.Add(int64(per)) - int64(per)) {
					crashApplyOps(s, i, per, crashOpOf(journal))
				}
				return
			}
			for i := int(next.Add(1) - 1); i < start+100_000; i = int(next.Add(1) - 1) {
				crashApply(s, i, workers > 1 || journal, crashOpOf(journal))
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

// crashApply applies op i of the crash workload and prints "ok I DUP",
// or the error and exits.
func crashApply(s *Store, i int, whole bool, op func(int) (PartialHeader, []byte, bool)) {
	h, data, partial := op(i)
	var res Result
	var err error
	if partial {
		var held int64
		var dup bool
		held, dup, err = s.BeginPartial("agent", h)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		res.Duplicate = dup
		for off := held; !dup && off < h.Size; off += 256 << 10 {
			end := min(off+256<<10, h.Size)
			if err := s.WritePartial("agent", h.OpID, off, data[off:end]); err != nil {
				fmt.Println("error", err)
				os.Exit(3)
			}
		}
		if !dup {
			res, err = s.CommitPartial("agent", h.OpID)
		}
	} else if whole {
		res, err = s.ApplyWhole("agent", h, data)
	} else {
		res, err = s.Apply("agent", h, bytes.NewReader(data))
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(3)
	}
	fmt.Printf("ok %d %v\n", i, res.Duplicate)
}

// crashApplyOps applies ops i to i+per-1 of the crash workload in one
// ApplyWholeOps and prints "ok I DUP" for each, or the error and exits.
func crashApplyOps(s *Store, i, per int, op func(int) (PartialHeader, []byte, bool)) {
	ops := make([]WholeOp, per)
	for k := range ops {
		ops[k].Header, ops[k].Data, _ = op(i + k)
	}
	for k, r := range s.ApplyWholeOps("agent", ops) {
		if r.Err != nil {
			fmt.Println("error", r.Err)
			os.Exit(3)
		}
		fmt.Printf("ok %d %v\n", i+k, r.Result.Duplicate)
	}
}

func TestCrashSIGKILL(t *testing.T) { testCrashSIGKILL(t, 1, false, 0) }

// TestCrashGroupCommitSIGKILL: sixteen writers at once, their writes
// grouped into shared transactions, killed mid-group: every op
// acknowledged is there once, and none is applied twice.
func TestCrashGroupCommitSIGKILL(t *testing.T) { testCrashSIGKILL(t, 16, false, 0) }

// TestCrashJournalSIGKILL: eight writers of small events, which the
// store acknowledges once they are in its journal, killed before any is
// folded into the agent's buckets (the child never folds in the
// background): every op acknowledged is there once after the restart
// folds the journal, byte-identical, and resent ops are duplicates.
func TestCrashJournalSIGKILL(t *testing.T) { testCrashSIGKILL(t, 8, true, 0) }

// TestCrashWholeOpsSIGKILL: eight writers each applying 16 small events
// at once (ApplyWholeOps, as the server applies a stream of several ops;
// docs/wire.md), their changes in shared group transactions and the
// journal, killed mid-group: every op acknowledged is there once,
// byte-identical, and none is applied twice.
func TestCrashWholeOpsSIGKILL(t *testing.T) { testCrashSIGKILL(t, 8, true, 16) }

func testCrashSIGKILL(t *testing.T, workers int, journal bool, per int) {
	crashOp := crashOpOf(journal)
	journaled := 0 // entries found in the journal after the kills
	if testing.Short() {
		t.Skip("re-executes the test binary and kills it 10 times")
	}
	path := t.TempDir() + "/crash.db"
	printed := map[int]bool{}
	next := 0 // the first op not acknowledged
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const kills = 10
	for round := range kills {
		// Start a little before the first op not acknowledged, so ops
		// that were committed but not acknowledged, and some that were,
		// are resent.
		start := max(0, next-3)
		env := []string{crashChildEnv + "=" + path, crashStartEnv + "=" + strconv.Itoa(start),
			crashWorkersEnv + "=" + strconv.Itoa(workers)}
		if journal {
			env = append(env, crashJournalEnv+"=1")
		}
		if per > 1 {
			env = append(env, crashOpsEnv+"="+strconv.Itoa(per))
		}
		cmd, out := testutil.StartChild(t, os.Stderr, env...)
		t0 := time.Now()
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		// Kill at a random moment after the store opened and a few ops landed.
		killAfter := 2 + rng.IntN(20)
		deadline := time.After(60 * time.Second)
		n := 0
		killed := false
	read:
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					break read
				}
				f := strings.Fields(line)
				switch {
				case len(f) == 1 && f[0] == "open":
					t.Logf("round %d open after %v", round, time.Since(t0))
				case len(f) == 3 && f[0] == "ok":
					i, _ := strconv.Atoi(f[1])
					dup := f[2] == "true"
					if printed[i] && !dup {
						t.Fatalf("round %d: op %d applied again after it was acknowledged", round, i)
					}
					printed[i] = true
					for printed[next] {
						next++
					}
					n++
					if n == killAfter && !killed {
						if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
							t.Fatal(err)
						}
						killed = true
					}
				default:
					t.Fatalf("round %d: child said %q", round, line)
				}
			case <-deadline:
				_ = cmd.Process.Kill()
				t.Fatalf("round %d: child made no progress within 60 s (%d ops)", round, n)
			}
		}
		t.Logf("round %d: %d ops, killed after %v", round, n, time.Since(t0))
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended with %v, not SIGKILL", round, err)
		}
		if journal {
			journaled += journalEntries(t, path)
		}
	}
	if journal && journaled == 0 {
		t.Fatal("no kill left an acknowledged op in the journal")
	}
	if journal {
		t.Logf("%d journal entries left by the kills", journaled)
	}
	t.Logf("%d kills, %d ops acknowledged", kills, len(printed))

	s, err := Open(path, crashCfg)
	if err != nil {
		t.Fatalf("open after crashes: %v", err)
	}
	defer s.Close()
	evs, err := s.Events("agent", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	eventCount := map[int]int{}
	for _, e := range evs {
		n := int(beU64(e.OpID[8:]))
		eventCount[n]++
		h, data, _ := crashOp(n)
		if e.Hash != h.Hash {
			t.Fatalf("event of op %d has the wrong hash", n)
		}
		_, o, err := s.EventData("agent", e.Seq)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readAll(t, o), data) {
			t.Fatalf("event of op %d: data differs", n)
		}
	}
	for n, c := range eventCount {
		if c != 1 {
			t.Fatalf("op %d stored as %d events", n, c)
		}
	}
	for i := range printed {
		h, data, _ := crashOp(i)
		if applied, _ := s.Applied("agent", h.OpID); !applied {
			t.Fatalf("acknowledged op %d missing from the applied index", i)
		}
		if h.Kind == edgesync.EventOp {
			if eventCount[i] != 1 {
				t.Fatalf("acknowledged event op %d stored %d times", i, eventCount[i])
			}
			continue
		}
		v, got := mustGet(t, s, "agent", h.Key)
		if v.OpID != h.OpID || v.Version != 1 || !bytes.Equal(got, data) {
			t.Fatalf("op %d: version %+v, data equal %v", i, v, bytes.Equal(got, data))
		}
	}
	// Nothing but the resumable partials is left over, and the counters
	// agree with what is stored.
	st := agentStats(t, s, "agent")
	var want int64
	keys, _ := s.Keys("agent", "", 0)
	for _, k := range keys {
		want += k.Size
	}
	for _, e := range evs {
		want += e.Size
	}
	if st.Bytes != want || st.Keys != int64(len(keys)) || st.Events != int64(len(evs)) {
		t.Fatalf("stats %+v disagree with %d keys, %d events, %d bytes", st, len(keys), len(evs), want)
	}
	// No orphaned staging: every chunk belongs to a key, an event or a
	// resumable partial (all writes here are multiples of the chunk size).
	chunks := func(n int64) int { return int((n + int64(crashCfg.ChunkSize) - 1) / int64(crashCfg.ChunkSize)) }
	wantChunks := 0
	for _, k := range keys {
		wantChunks += chunks(k.Size)
	}
	for _, e := range evs {
		wantChunks += chunks(e.Size)
	}
	parts, err := s.Partials("agent")
	if err != nil {
		t.Fatal(err)
	}
	// After a restart no partial is being received: each reserves only
	// what it holds.
	var reserved int64
	for _, p := range parts {
		wantChunks += chunks(p.Held)
		reserved += p.Held
		if p.Reserved != p.Held {
			t.Errorf("partial %s reserves %d bytes after a restart, holds %d", p.Header.OpID, p.Reserved, p.Held)
		}
	}
	if n := countChunks(t, s, "agent"); n != wantChunks || st.Reserved != reserved {
		t.Fatalf("%d chunks stored, %d referenced; reserved %d, partials hold %d", n, wantChunks, st.Reserved, reserved)
	}
}

// journalEntries counts the entries in the journal of the store at path,
// read with bbolt alone.
func journalEntries(t *testing.T, path string) int {
	t.Helper()
	n := 0
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		n = tx.Bucket(bktJournal).Stats().KeyN
		return nil
	})
	return n
}
