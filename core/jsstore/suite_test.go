package jsstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
)

// prefixes makes every store of a test run its own buckets and streams,
// so that one NATS server serves many tests.
var prefixes atomic.Int64

// openTest opens a store on url with a prefix of its own; the test's
// cleanup closes it.
func openTest(t testing.TB, url string, cfg core.Config) *Store {
	t.Helper()
	return openWith(t, Config{Config: cfg, URLs: []string{url}, Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1})
}

func openWith(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestStoreSuite runs the suite every Backend passes (core/storetest)
// against a JetStream store on a real embedded NATS server, with events
// committed as on one replica and, under batches, as on a replicated
// store (docs/jetstream.md, "Exactly once").
func TestStoreSuite(t *testing.T) {
	srv := natstest.Run(t)
	t.Run("two-writes", func(t *testing.T) { runSuite(t, srv, false) })
	t.Run("batches", func(t *testing.T) { runSuite(t, srv, true) })
}

func runSuite(t *testing.T, srv *natstest.Server, batches bool) {
	storetest.Run(t, storetest.Harness{
		Open: func(t testing.TB, cfg core.Config) storetest.Store {
			return openWith(t, Config{Config: cfg, URLs: []string{srv.URL()}, Prefix: fmt.Sprintf("t%d", prefixes.Add(1)),
				SweepInterval: -1, forceBatches: batches})
		},
		Reopen: func(t testing.TB, s storetest.Store, cfg core.Config) storetest.Store {
			old := s.(*Store)
			if err := old.Close(); err != nil {
				t.Fatal(err)
			}
			c := old.cfg
			c.Config = cfg
			return openWith(t, c)
		},
		MemoryPartials: true,
	})
}
