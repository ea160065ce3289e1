package core

import (
	"bytes"
	"crypto/sha256"
	"io"
	"path/filepath"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.Main(m, map[string]func(){crashChildEnv: crashChild, salvageChildEnv: salvageChild, idleCoreEnv: idleCoreChild, fleetChildEnv: fleetChild})
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

// opID returns a deterministic op ID for n; higher n are newer.
func opID(n uint64) edgesync.OpID { return testutil.OpID(n) }

// payload returns size random bytes determined by seed.
func payload(seed uint64, size int) []byte { return testutil.Payload(seed, size) }

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

// The contract every store keeps (docs/core.md) is tested by the suite in
// core/storetest, which store_suite_test.go runs against this store, its
// chunk counts included (CountChunks). Here: the helpers of the package's
// other tests and what only the bbolt store does.

// countChunks counts the chunks holding agent's data: blob chunks, and
// the version and event records that hold a small op's data themselves.
func countChunks(t testing.TB, s *Store, agent string) int {
	t.Helper()
	n := 0
	if err := s.view(agent, func(a *agentBucket) error {
		n = a.blobs.Stats().KeyN
		if err := a.keys.ForEach(func(k, v []byte) error {
			ver, err := decodeVersion(string(k), v)
			if ver.inline != nil {
				n++
			}
			return err
		}); err != nil {
			return err
		}
		return a.events.ForEach(func(k, v []byte) error {
			ev, err := decodeEvent(beU64(k), v)
			if ev.inline != nil {
				n++
			}
			return err
		})
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestAppliedRetention(t *testing.T) {
	clock := testutil.NewClock()
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

func TestOpenLocked(t *testing.T) {
	_, path := openTest(t, Config{})
	s2, err := Open(path, Config{OpenTimeout: 50 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a locked store succeeded")
	}
}
