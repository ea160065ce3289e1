package agent

import (
	"bytes"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// roomForSummaries is a real bbolt store that refuses every write
// store-full while full is set, as a core whose disk is full. Once there
// is room it stores summaries at once and holds each op's full data
// until gate closes, so that only a stored summary can tell the agent
// the core stores again.
type roomForSummaries struct {
	*core.Store
	full *atomic.Bool
	gate chan struct{}
}

func (s roomForSummaries) refuse() error {
	if s.full.Load() {
		return fmt.Errorf("%w: the test's disk is full", core.ErrStoreFull)
	}
	return nil
}

func (s roomForSummaries) PutSummary(agent string, sum core.Summary) error {
	if err := s.refuse(); err != nil {
		return err
	}
	return s.Store.PutSummary(agent, sum)
}

func (s roomForSummaries) ApplyWhole(agent string, hdr core.PartialHeader, data []byte) (core.Result, error) {
	if err := s.refuse(); err != nil {
		return core.Result{}, err
	}
	<-s.gate
	return s.Store.ApplyWhole(agent, hdr, data)
}

func (s roomForSummaries) ApplyWholeOps(agent string, ops []core.WholeOp) []core.WholeResult {
	if err := s.refuse(); err != nil {
		out := make([]core.WholeResult, len(ops))
		for i := range out {
			out[i].Err = err
		}
		return out
	}
	<-s.gate
	return s.Store.ApplyWholeOps(agent, ops)
}

func (s roomForSummaries) BeginPartial(agent string, hdr core.PartialHeader) (int64, bool, error) {
	if err := s.refuse(); err != nil {
		return 0, false, err
	}
	<-s.gate
	return s.Store.BeginPartial(agent, hdr)
}

// TestCoreStoresSummaryEndsHold: under summary-first parameters the
// hold's trial after a full core has room again is a summary. The core
// acknowledging it has stored it, so the hold ends there: core_refusing
// clears, and the other ops do not go one at a time (each waiting for
// the one before to be answered) until some op's full data is stored.
func TestCoreStoresSummaryEndsHold(t *testing.T) {
	old := firstFullBackoff
	firstFullBackoff = 100 * time.Millisecond
	defer func() { firstFullBackoff = old }()
	p := testutil.NewPKI(t, "site-1")
	var full atomic.Bool
	full.Store(true)
	gate := make(chan struct{})
	var open sync.Once
	c := coretest.Start(t, p, func(sc *core.ServerConfig) {
		store, err := core.Open(t.TempDir()+"/core.db", core.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		sc.Store = roomForSummaries{Store: store, full: &full, gate: gate}
	})
	t.Cleanup(func() { open.Do(func() { close(gate) }) }) // before the core stops
	a := startAgent(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), Options{})
	sat, fast, on := edgesync.Satellite, 100*time.Millisecond, true
	if err := a.SetProfile(sat, linkmon.Override{Interval: &fast, SummaryOnly: &on}); err != nil {
		t.Fatal(err)
	}
	if err := a.Switch("core", linkmon.Pin{Class: &sat}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "a connection", func() bool { return a.Stats()[0].Connected })
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "ev/1", Kind: edgesync.EventOp, Priority: edgesync.Normal,
		Payload: bytes.NewReader([]byte("reading 1"))})
	testutil.WaitFor(t, 30*time.Second, "the core to refuse the op store-full", func() bool {
		return a.Stats()[0].Nacks["store-full"] >= 1 && mustStatus(t, a).CoreRefusing != nil
	})
	full.Store(false)
	testutil.WaitFor(t, 30*time.Second, "the core to store the op's summary", func() bool {
		return c.Server.Stats().Summaries >= 1
	})
	testutil.WaitFor(t, 10*time.Second, "core_refusing to clear once the core stored the op's summary", func() bool {
		return mustStatus(t, a).CoreRefusing == nil
	})
	open.Do(func() { close(gate) })
	testutil.WaitFor(t, 30*time.Second, "the op's full data at the core", func() bool {
		return c.Server.Stats().OpsApplied >= 1 && outboxEmpty(a)
	})
}
