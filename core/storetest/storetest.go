// Package storetest is the test suite that every core.Backend passes:
// core's tests run it against the bbolt Store, core/jsstore's against
// JetStream. It holds the store's contract (docs/core.md) as tests:
// applying, de-duplication, resume, hash and base checks, quota,
// retention, summaries, concurrent and random sequences against a model.
// Where the two stores differ by design, the Harness says how (event
// sequence numbers, small partial ops held in memory). Tests only.
package storetest

import (
	"bytes"
	"crypto/sha256"
	"io"
	"slices"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// Store is what the suite drives: a Backend and the extras both stores
// have.
type Store interface {
	core.Backend
	core.Sweeper
	core.WholeOpsApplier
	Apply(agent string, hdr core.PartialHeader, r io.Reader) (core.Result, error)
	Summary(agent, key string) (core.Summary, error)
	Partials(agent string) ([]core.PartialInfo, error)
	CheckBase(agent, key string, baseHash [32]byte) error
}

// Harness opens the stores of one implementation.
type Harness struct {
	// Open returns a new, empty store with cfg's limits; the test's
	// cleanup closes it.
	Open func(t testing.TB, cfg core.Config) Store
	// Reopen closes s and opens the same store again, as a restart of
	// the core does.
	Reopen func(t testing.TB, s Store, cfg core.Config) Store
	// DenseSeq says an agent's events are numbered 1, 2, 3, ...;
	// otherwise the numbers only increase.
	DenseSeq bool
	// MemoryPartials says partial ops up to cfg.InlineMax are held in
	// the process's memory: a Reopen loses them, and BeginPartial does not
	// report such an op as a duplicate (its commit does).
	MemoryPartials bool
	// ReleaseOnReopen says a partial op reserves its declared size against
	// the quota only while it is being received: after a Reopen (whose
	// streams all ended) it reserves only the bytes it holds
	// (core.PartialReleaser).
	ReleaseOnReopen bool
	// BoundOnCommit says the event log's retention bounds hold after each
	// commit; otherwise only after a Sweep.
	BoundOnCommit bool
	// LazyObjects says an Object reads its data from the store at each
	// ReadAt, whatever its size: a reader of a replaced version fails with
	// ErrNotFound, of a closed store with ErrClosed. Otherwise a reader may
	// hold what it read (a small object, or one replaced under it).
	LazyObjects bool
	// Chunks, where set, counts the chunks holding agent's data in s: the
	// suite then checks that no data is left behind (replaced versions,
	// refused ops, duplicates, evicted events).
	Chunks func(t testing.TB, s Store, agent string) int
	// Fold, where set, moves what the store holds in a journal into its
	// agents' records (core.Store.Fold, docs/core.md "The journal"): the
	// model test then folds at random steps, and checks the store after
	// some steps only, since its reads fold too.
	Fold func(t testing.TB, s Store)
}

// Run runs every test of the suite against h's stores.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"ApplyStateAndGet", testApplyStateAndGet},
		{"ObjectReadAt", testObjectReadAt},
		{"Dedup", testDedup},
		{"ResumeAcrossReopen", testResumeAcrossReopen},
		{"HashMismatchDiscards", testHashMismatchDiscards},
		{"BaseMismatch", testBaseMismatch},
		{"Quota", testQuota},
		{"AgentQuota", testAgentQuota},
		{"EventLogAndRetention", testEventLogAndRetention},
		{"PartialAgeSweep", testPartialAgeSweep},
		{"LargeObjectStaged", testLargeObjectStaged},
		{"Summaries", testSummaries},
		{"InvalidArguments", testInvalidArguments},
		{"Closed", testClosed},
		{"ConcurrentApply", testConcurrentApply},
		{"SmallWritesCoalesce", testSmallWrites},
		{"OlderVersionNeverReplacesNewer", testOlderVersionNeverReplacesNewer},
		{"Names", testNames},
		{"ReleasePartial", testReleasePartial},
		{"ApplyWholeOps", testApplyWholeOps},
		{"Model", testModel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

// OpID returns a deterministic op ID for n; higher n are newer.
func OpID(n uint64) edgesync.OpID { return testutil.OpID(n) }

// Payload returns size random bytes determined by seed.
func Payload(seed uint64, size int) []byte { return testutil.Payload(seed, size) }

// Header returns the header of an op carrying data.
func Header(id edgesync.OpID, kind edgesync.OpKind, key string, data []byte) core.PartialHeader {
	return core.PartialHeader{OpID: id, Key: key, Kind: kind, Priority: edgesync.Normal, Size: int64(len(data)), Hash: sha256.Sum256(data)}
}

func mustApply(t testing.TB, s Store, agent string, h core.PartialHeader, data []byte) core.Result {
	t.Helper()
	res, err := s.Apply(agent, h, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("apply %s: %v", h.OpID, err)
	}
	return res
}

// commitPartial sends the op h with data as a partial op in one write
// (begin, write, commit), failing t if the begin or the write fails, and
// returns what the commit answers: the step a test of the commit's checks
// is about.
func commitPartial(t testing.TB, s Store, agent string, h core.PartialHeader, data []byte) (core.Result, error) {
	t.Helper()
	if _, _, err := s.BeginPartial(agent, h); err != nil {
		t.Fatalf("begin %s: %v", h.OpID, err)
	}
	if err := s.WritePartial(agent, h.OpID, 0, data); err != nil {
		t.Fatalf("write %s: %v", h.OpID, err)
	}
	return s.CommitPartial(agent, h.OpID)
}

// CheckEvents fails t unless agent's events in s are the ops want, each
// once, in that order.
func CheckEvents(t testing.TB, s core.Backend, agent string, want []edgesync.OpID) []core.Event {
	t.Helper()
	evs, err := s.Events(agent, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]edgesync.OpID, len(evs))
	for i, e := range evs {
		got[i] = e.OpID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("events\n%v\nwant each once, in order\n%v", got, want)
	}
	return evs
}

// EventsByOp reads all of agent's events in s and counts them by op ID,
// for checks that each op is stored exactly once.
func EventsByOp(t testing.TB, s core.Backend, agent string) ([]core.Event, map[edgesync.OpID]int) {
	t.Helper()
	evs, err := s.Events(agent, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := make(map[edgesync.OpID]int, len(evs))
	for _, e := range evs {
		n[e.OpID]++
	}
	return evs, n
}

// CheckObject reads agent's current version of key in s from start to end,
// without holding it in memory, and fails t unless it is data; how says
// how the object was stored or read, for the messages.
func CheckObject(t testing.TB, s Store, agent, key string, data []byte, how string) {
	t.Helper()
	_, o, err := s.Current(agent, key)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if n, err := io.Copy(h, io.NewSectionReader(o, 0, o.Size())); err != nil || n != int64(len(data)) {
		t.Fatalf("read %d of %d bytes %s: %v", n, len(data), how, err)
	}
	if [32]byte(h.Sum(nil)) != sha256.Sum256(data) {
		t.Fatalf("the object read %s differs from the one stored", how)
	}
}

func readAll(t testing.TB, o *core.Object) []byte {
	t.Helper()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("read object: %v", err)
	}
	return b
}

func mustGet(t testing.TB, s Store, agent, key string) (core.Version, []byte) {
	t.Helper()
	v, o, err := s.Current(agent, key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	return v, readAll(t, o)
}

func agentStats(t testing.TB, s Store, agent string) core.AgentStats {
	t.Helper()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st.ByAgent[agent]
}

// checkSeqs checks events' sequence numbers: increasing, and 1, 2, 3, ...
// from first when the store numbers densely.
func checkSeqs(t testing.TB, h Harness, evs []core.Event, first uint64) {
	t.Helper()
	for i, e := range evs {
		if h.DenseSeq && e.Seq != first+uint64(i) {
			t.Fatalf("event %d has seq %d, want %d", i, e.Seq, first+uint64(i))
		}
		if i > 0 && e.Seq <= evs[i-1].Seq {
			t.Fatalf("event %d has seq %d after %d", i, e.Seq, evs[i-1].Seq)
		}
	}
}

// checkChunks checks, where the store counts them, that agent's data is
// held in want chunks.
func checkChunks(t testing.TB, h Harness, s Store, agent string, want int) {
	t.Helper()
	if h.Chunks == nil {
		return
	}
	if n := h.Chunks(t, s, agent); n != want {
		t.Fatalf("%d chunks stored for %s, want %d (data left behind?)", n, agent, want)
	}
}
