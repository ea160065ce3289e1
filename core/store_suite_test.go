package core_test

import (
	"path/filepath"
	"testing"

	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
)

// TestStoreSuite runs the suite every Backend passes against the bbolt
// store (core/jsstore runs it against JetStream).
func TestStoreSuite(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		ReleaseOnReopen: true,
		// The journal is folded by reads, the model's fold steps and
		// reopens only, not at the background goroutine's whim.
		Open: func(t testing.TB, cfg core.Config) storetest.Store {
			return openBolt(t, filepath.Join(t.TempDir(), "core.db"), core.WithoutBackgroundFold(cfg))
		},
		Reopen: func(t testing.TB, s storetest.Store, cfg core.Config) storetest.Store {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			return openBolt(t, s.(*core.Store).Path(), core.WithoutBackgroundFold(cfg))
		},
		Fold: func(t testing.TB, s storetest.Store) {
			if err := s.(*core.Store).Fold(); err != nil {
				t.Fatal(err)
			}
		},
		DenseSeq:      true,
		BoundOnCommit: true,
		// A small op's data is in its record (format 2): an Object of it
		// holds that data, as JetStream's small objects do.
		LazyObjects: false,
		Chunks: func(t testing.TB, s storetest.Store, agent string) int {
			return core.CountChunks(t, s.(*core.Store), agent)
		},
	})
}

func openBolt(t testing.TB, path string, cfg core.Config) *core.Store {
	t.Helper()
	s, err := core.Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
