package agent

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestCoreTroubleBackoff: a core whose store was closed under it (it is
// shutting down) refuses every op shutting-down. The agent does not send
// the op again at once: it holds its ops for a backoff that doubles
// (corefull.go), so 4 refusals take at least the first three holds, and
// its status says whose trouble it is.
func TestCoreTroubleBackoff(t *testing.T) {
	old := troubleBackoff
	troubleBackoff = 100 * time.Millisecond
	defer func() { troubleBackoff = old }()
	p := testutil.NewPKI(t, "site-1")
	var store *core.Store
	c := coretest.Start(t, p, func(sc *core.ServerConfig) {
		var err error
		store, err = core.Open(filepath.Join(t.TempDir(), "closing.db"), core.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		sc.Store = store
	})
	a := startAgent(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), Options{})
	testutil.WaitFor(t, 30*time.Second, "a connection", func() bool { return a.Stats()[0].Connected })
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "ev/1", Kind: edgesync.EventOp, Priority: edgesync.Normal,
		Payload: bytes.NewReader([]byte("reading 1"))})
	const refusals = 4
	testutil.WaitFor(t, 30*time.Second, "4 refusals shutting-down", func() bool {
		return a.Stats()[0].Nacks["shutting-down"] >= refusals
	})
	took := time.Since(start)
	least := troubleBackoff * (1 + 2 + 4)
	t.Logf("%d refusals shutting-down in %v", refusals, took)
	if took < least {
		t.Errorf("%d refusals shutting-down came in %v: the agent sent the op again without the backoff (at least %v)", refusals, took, least)
	}
	r := mustStatus(t, a).CoreRefusing
	if r == nil || r.Code != "shutting-down" || r.Refusals < refusals || !strings.Contains(r.Explain, "core's side") || !r.NextTry.After(r.Since) {
		t.Errorf("status while the core refuses: core_refusing %+v, want shutting-down, the core's side, a next try", r)
	}
	if ob, err := a.Outbox().Stats(); err != nil || ob.Total.Ops != 1 {
		t.Errorf("the outbox holds %d ops (%v) while the core refuses; want the refused op kept", ob.Total.Ops, err)
	}
}
