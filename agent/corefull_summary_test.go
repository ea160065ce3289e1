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

// noRoomForData is a real bbolt store at the brink: it stores summaries,
// which are small, and refuses every op's data store-full.
type noRoomForData struct{ *core.Store }

var errNoRoom = fmt.Errorf("%w: the test's disk has room for summaries only", core.ErrStoreFull)

func (s noRoomForData) ApplyWhole(string, core.PartialHeader, []byte) (core.Result, error) {
	return core.Result{}, errNoRoom
}

func (s noRoomForData) ApplyWholeOps(_ string, ops []core.WholeOp) []core.WholeResult {
	out := make([]core.WholeResult, len(ops))
	for i := range out {
		out[i].Err = errNoRoom
	}
	return out
}

func (s noRoomForData) BeginPartial(string, core.PartialHeader) (int64, bool, error) {
	return 0, false, errNoRoom
}

// TestCoreFullTrialIsOneBackfillOp: the summaries are at the core and
// their ops' full data waits as backfill when the core's store fills. The
// hold's trial is one op, as for any other: not every backfill op at
// once after each backoff.
func TestCoreFullTrialIsOneBackfillOp(t *testing.T) {
	old := firstFullBackoff
	firstFullBackoff = 100 * time.Millisecond
	defer func() { firstFullBackoff = old }()
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, func(sc *core.ServerConfig) {
		store, err := core.Open(t.TempDir()+"/core.db", core.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		sc.Store = noRoomForData{store}
	})
	a := startAgent(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), Options{})
	sat, fast, on := edgesync.Satellite, 100*time.Millisecond, true
	if err := a.SetProfile(sat, linkmon.Override{Interval: &fast, SummaryOnly: &on}); err != nil {
		t.Fatal(err)
	}
	if err := a.Switch("core", linkmon.Pin{Class: &sat}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "a connection", func() bool { return a.Stats()[0].Connected })
	const n = 10
	for i := range n {
		enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("ev/%d", i), Kind: edgesync.EventOp, Priority: edgesync.Normal,
			Payload: bytes.NewReader(fmt.Appendf(nil, "reading %d", i))})
	}
	testutil.WaitFor(t, 30*time.Second, "the summaries at the core and the backfill refused", func() bool {
		return c.Server.Stats().Summaries >= n && a.Stats()[0].Nacks["store-full"] >= n
	})
	nextTry := func() time.Time {
		r := mustStatus(t, a).CoreRefusing
		if r == nil {
			t.Fatal("core_refusing cleared while the core refuses every op's data")
		}
		return r.NextTry
	}
	before := a.Stats()[0].Nacks["store-full"]
	const trials = 3
	for i := range trials {
		at := nextTry()
		testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("trial %d refused", i+1), func() bool { return !nextTry().Equal(at) })
	}
	if got := a.Stats()[0].Nacks["store-full"] - before; got > trials+1 {
		t.Errorf("%d refusals store-full in %d holds' trials: every backfill op went as the trial, want one op each (at most %d)", got, trials, trials+1)
	}
}
