package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// The tests of a core that refuses for a while (corefull.go): its store
// full, or the core in trouble (shutting down, busy, internal).

// TestCoreStoreFull: the core's bbolt store is on a small tmpfs that the
// test fills, as a full disk at the core does. The core refuses the ops
// it has no room for with the reason store-full (not internal), says so
// in one ERROR naming the store's file and the free space, and on
// /metrics; the agent keeps the ops, backs off rather than sending them
// again at once (the core's refusals are counted over a window), and once
// the test frees the room every op arrives by itself, exactly once and
// byte for byte; what was stored before the disk filled is unchanged.
func TestCoreStoreFull(t *testing.T) {
	dir := testutil.Tmpfs(t, 4<<20)
	p := testutil.NewPKI(t, "site-1")
	var coreLog, agentLog testutil.Buffer
	c := coretest.StartOn(t, p, filepath.Join(dir, "core.db"), func(cfg *core.ServerConfig) {
		cfg.Logger = teeLogger(t, "core", &coreLog)
	})
	cfg := coretest.AgentConfig(t, p, c.Addr.String())
	a := startAgentOpts(t, cfg, Options{TLS: p.ClientTLS(t, "127.0.0.1"), Logger: teeLogger(t, "agent", &agentLog)})

	rnd := rand.New(rand.NewPCG(7, 8))
	payload := func() []byte {
		b := make([]byte, 48<<10)
		for i := range b {
			b[i] = byte(rnd.Uint32()) // incompressible: each op needs its room
		}
		return b
	}
	send := func(prefix string, n int) (ops []outbox.Op, data [][]byte) {
		for i := range n {
			d := payload()
			ops = append(ops, enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("%s/%d", prefix, i),
				Kind: edgesync.EventOp, Priority: edgesync.Normal, Payload: bytes.NewReader(d)}))
			data = append(data, d)
		}
		return ops, data
	}
	before, beforeData := send("before", 4)
	testutil.WaitFor(t, 30*time.Second, "the first ops stored at the core", func() bool { return outboxEmpty(a) })

	filler := testutil.FillDisk(t, dir, "filler", 8<<20)
	after, afterData := send("after", 12)
	testutil.WaitFor(t, 30*time.Second, "the core refusing an op on its full disk", func() bool {
		return c.Server.Stats().OpsNacked > 0
	})
	// The agent must not send refused ops again at once: count the
	// core's refusals over a window (a measure, not a wait for an event).
	n0 := c.Server.Stats().OpsNacked
	time.Sleep(3 * time.Second)
	n1 := c.Server.Stats().OpsNacked
	nacks := a.Stats()[0].Nacks
	t.Logf("full disk: %d refusals in 3 s after the first; the agent's nacks by code %v", n1-n0, nacks)
	if nacks["store-full"] == 0 {
		t.Errorf("the agent's nacks by code %v: want store-full", nacks)
	}
	if n1-n0 > int64(len(after))+5 {
		t.Errorf("%d refusals in 3 s on a full store for %d queued ops: the agent sends them again without backing off", n1-n0, len(after))
	}
	if st, err := a.Outbox().Stats(); err != nil || st.Total.Ops == 0 {
		t.Fatalf("the refused ops are not kept in the outbox: %+v, %v", st.Total, err)
	}
	if m := scrapeCore(t, c); !strings.Contains(m, "edge_sync_core_store_full 1") {
		t.Errorf("/metrics does not say the store is full:\n%s", grepLines(m, "store_full"))
	}
	st := mustStatus(t, a)
	if r := st.CoreRefusing; r == nil || r.Code != "store-full" || r.Refusals == 0 || !strings.Contains(r.Explain, "core's side") ||
		!strings.Contains(r.Explain, "queued") || !r.NextTry.After(r.Since) {
		t.Errorf("status while the core is full: core_refusing %+v, want store-full, the core's side, ops queued, a next try", r)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 60*time.Second, "the queued ops stored once the core has room", func() bool { return outboxEmpty(a) })

	events, seqs := coreEvents(t, c, "site-1")
	for i, op := range append(before, after...) {
		want := append(beforeData, afterData...)[i]
		if n := events[op.ID]; n != 1 {
			t.Fatalf("op %s (%s) stored %d times, want exactly once", op.ID, op.Key, n)
		}
		got, err := eventData(c, "site-1", seqs[op.ID])
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("op %s (%s): the core holds %d bytes (%v) that differ from the %d sent", op.ID, op.Key, len(got), err, len(want))
		}
	}
	if len(events) != len(before)+len(after) {
		t.Fatalf("the core holds %d events, want %d", len(events), len(before)+len(after))
	}
	if m := scrapeCore(t, c); !strings.Contains(m, "edge_sync_core_store_full 0") {
		t.Errorf("/metrics still says the store is full once it stored again:\n%s", grepLines(m, "store_full"))
	}
	if r := mustStatus(t, a).CoreRefusing; r != nil {
		t.Errorf("status once the core stores again: core_refusing %+v, want none", r)
	}
	// The agent says it once, as a warning that the data stays queued,
	// and says when the core stores again.
	warns := grepLines(agentLog.String(), "its store is full")
	if strings.Count(warns, "\n") != 1 || !strings.Contains(warns, "[WARN]") || !strings.Contains(warns, "queued") {
		t.Errorf("the agent's warnings about the full core, want one saying the ops stay queued:\n%s", warns)
	}
	if !strings.Contains(agentLog.String(), "the core stores again") {
		t.Errorf("the agent did not log that the core stores again")
	}
	// One ERROR for the whole episode, naming the file and the room left.
	errs := grepLines(coreLog.String(), "[ERROR]")
	if strings.Count(errs, "\n") != 1 || !strings.Contains(errs, c.Store.Path()) || !strings.Contains(errs, "free") {
		t.Errorf("the core's ERRORs, want one naming %s and its free space:\n%s", c.Store.Path(), errs)
	}
}

// teeLogger logs at debug level into buf and, under -v, into t's log.
func teeLogger(t testing.TB, name string, buf io.Writer) hclog.Logger {
	out := buf
	if testing.Verbose() {
		out = io.MultiWriter(buf, testLogWriter{t})
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: out})
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// scrapeCore reads the core's /metrics.
func scrapeCore(t testing.TB, c *coretest.Core) string {
	t.Helper()
	rec := httptest.NewRecorder()
	c.Server.MetricsHandler(c.Store).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// grepLines returns the lines of s that contain sub, each ended by a
// newline.
func grepLines(s, sub string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) && !strings.HasPrefix(line, "# ") {
			b.WriteString(strings.TrimRight(line, "\n") + "\n")
		}
	}
	return b.String()
}

// TestCoreFullBackoff: the hold of a full core starts at the first
// refusal, is not lengthened by the refusals of ops sent before it, and
// doubles with each refused trial up to its bound; while the trial is in
// flight nothing else goes; an ACK ends it.
func TestCoreFullBackoff(t *testing.T) {
	var f coreFull
	log := hclog.NewNullLogger()
	t0 := time.Now()
	if held, _ := f.held(t0, 0); held || f.status() != nil {
		t.Fatal("held before any refusal")
	}
	f.refused(t0, t0, wire.CodeStoreFull, "store full", log)
	f.refused(t0.Add(-time.Millisecond), t0.Add(time.Second), wire.CodeStoreFull, "store full", log) // sent before the hold began
	held, until := f.held(t0.Add(time.Second), 0)
	if !held || !until.Equal(t0.Add(firstFullBackoff)) {
		t.Fatalf("after two refusals: held %v until %v, want until %v", held, until.Sub(t0), firstFullBackoff)
	}
	at, want := t0, firstFullBackoff
	for range 12 {
		at = until
		if held, _ := f.held(at, 0); held {
			t.Fatalf("still held at the end of the hold (%v)", at.Sub(t0))
		}
		if held, _ := f.held(at, 1); !held {
			t.Fatal("not held while the trial is in flight")
		}
		f.refused(at, at, wire.CodeStoreFull, "store full", log) // the trial
		want = min(2*want, maxFullBackoff)
		if _, until = f.held(at, 0); until.Sub(at) != want {
			t.Fatalf("backoff after a refused trial: %v, want %v", until.Sub(at), want)
		}
	}
	if want != maxFullBackoff {
		t.Fatalf("backoff %v after 12 trials, want the bound %v", want, maxFullBackoff)
	}
	if r := f.status(); r == nil || r.Refusals != 14 || !r.Since.Equal(t0) || !r.NextTry.Equal(until) {
		t.Fatalf("status %+v: want 14 refusals since the first, next try at the hold's end", r)
	}
	f.stored(log)
	if held, _ := f.held(at, 0); held || f.status() != nil {
		t.Fatal("held after an ACK")
	}
}

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

// poisonStore is a real bbolt store whose writes of one key fail, as a
// core fails on one op it cannot store (a damaged record of that key):
// the core answers that op internal and stores the others.
type poisonStore struct {
	*core.Store
	key string
	all *atomic.Bool // set: every write fails
}

func (s poisonStore) fails(key string) bool { return key == s.key || s.all != nil && s.all.Load() }

var errPoison = errors.New("the test's store cannot write this key")

func (s poisonStore) ApplyWhole(agent string, hdr core.PartialHeader, data []byte) (core.Result, error) {
	if s.fails(hdr.Key) {
		return core.Result{}, errPoison
	}
	return s.Store.ApplyWhole(agent, hdr, data)
}

func (s poisonStore) ApplyWholeOps(agent string, ops []core.WholeOp) []core.WholeResult {
	out := make([]core.WholeResult, len(ops))
	var rest []core.WholeOp
	var at []int
	for i, op := range ops {
		if s.fails(op.Header.Key) {
			out[i].Err = errPoison
			continue
		}
		rest, at = append(rest, op), append(at, i)
	}
	for k, r := range s.Store.ApplyWholeOps(agent, rest) {
		out[at[k]] = r
	}
	return out
}

// TestInternalRefusalOfOneOpDoesNotStall: a core that fails one op
// internal, and stores every other, must not hold the agent's whole
// outbox behind that op. The hold of a core in trouble sends one op as a
// trial after each backoff; when the trial is always the op the core
// cannot store (it leads the lease order), nothing else would ever go.
func TestInternalRefusalOfOneOpDoesNotStall(t *testing.T) {
	old := troubleBackoff
	troubleBackoff = 100 * time.Millisecond
	defer func() { troubleBackoff = old }()
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, func(sc *core.ServerConfig) {
		store, err := core.Open(filepath.Join(t.TempDir(), "core.db"), core.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		sc.Store = poisonStore{Store: store, key: "poison"}
	})
	a := startAgent(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), Options{})
	testutil.WaitFor(t, 30*time.Second, "a connection", func() bool { return a.Stats()[0].Connected })
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "poison", Kind: edgesync.EventOp, Priority: edgesync.High,
		Payload: bytes.NewReader([]byte("the core cannot store this"))})
	testutil.WaitFor(t, 30*time.Second, "the core to refuse the poisoned op", func() bool { return a.Stats()[0].Nacks["internal"] >= 1 })
	const n = 20
	for i := range n {
		enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("ev/%d", i), Kind: edgesync.EventOp, Priority: edgesync.Normal,
			Payload: bytes.NewReader(fmt.Appendf(nil, "reading %d", i))})
	}
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("the %d ops behind the op the core cannot store to reach it", n), func() bool {
		return c.Server.Stats().OpsApplied >= n
	})
	testutil.WaitFor(t, 30*time.Second, "the outbox to hold the refused op alone", func() bool {
		ob, err := a.Outbox().Stats()
		return err == nil && ob.Total.Ops == 1
	})
}

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
		sc.Store = roomForSummaries{Store: sc.Store.(*core.Store), full: &full, gate: gate}
	})
	t.Cleanup(func() { open.Do(func() { close(gate) }) }) // before the core stops
	a := summaryFirstAgent(t, p, c)
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
	c := coretest.Start(t, p, func(sc *core.ServerConfig) { sc.Store = noRoomForData{sc.Store.(*core.Store)} })
	a := summaryFirstAgent(t, p, c)
	const n = 10
	for i := range n {
		enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("ev/%d", i), Kind: edgesync.EventOp, Priority: edgesync.Normal,
			Payload: bytes.NewReader(fmt.Appendf(nil, "reading %d", i))})
	}
	// The agent's own count of stored summaries: the core counts one before
	// its ACK arrives, and that ACK ends a hold begun meanwhile.
	testutil.WaitFor(t, 30*time.Second, "the summaries stored and the backfill refused", func() bool {
		st := a.Stats()[0]
		return st.Summaries >= n && st.Nacks["store-full"] >= n && mustStatus(t, a).CoreRefusing != nil
	})
	nextTry := func() time.Time {
		r := mustStatus(t, a).CoreRefusing
		if r == nil {
			t.Fatal("core_refusing cleared while the core refuses every op's data")
		}
		return r.NextTry
	}
	trial := func(what string) {
		at := nextTry()
		testutil.WaitFor(t, 30*time.Second, what, func() bool { return !nextTry().Equal(at) })
	}
	// Refusals of ops sent before the first hold began may still come
	// (under -race, 3 more than the trials once): count from the hold's
	// first trial on.
	trial("the first trial refused")
	before := a.Stats()[0].Nacks["store-full"]
	const trials = 3
	for i := range trials {
		trial(fmt.Sprintf("trial %d refused", i+2))
	}
	if got := a.Stats()[0].Nacks["store-full"] - before; got > trials+1 {
		t.Errorf("%d refusals store-full in %d holds' trials: every backfill op went as the trial, want one op each (at most %d)", got, trials, trials+1)
	}
}

// summaryFirstAgent starts an agent of c pinned to the satellite class,
// which sends the summaries of normal ops first, with a batch every
// 100 ms, and waits for its connection.
func summaryFirstAgent(t *testing.T, p *testutil.PKI, c *coretest.Core) *Agent {
	t.Helper()
	a := startAgent(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), Options{})
	sat, fast, on := edgesync.Satellite, 100*time.Millisecond, true
	if err := a.SetProfile(sat, linkmon.Override{Interval: &fast, SummaryOnly: &on}); err != nil {
		t.Fatal(err)
	}
	if err := a.Switch("core", linkmon.Pin{Class: &sat}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "a connection", func() bool { return a.Stats()[0].Connected })
	return a
}

// TestInternalRecoveryFreesParkedOps: a core that fails every op
// internal for a while, then stores again. An op refused internal is
// parked so that the hold's next trial is another op; it must not then
// sit out a backoff of its own, growing with each refusal, once the core
// stores again: a critical op waited up to the park's 10 s doubling to
// 10 min after the core had recovered.
func TestInternalRecoveryFreesParkedOps(t *testing.T) {
	oldTrouble, oldPark := troubleBackoff, firstParkBackoff
	troubleBackoff, firstParkBackoff = 100*time.Millisecond, 30*time.Second
	defer func() { troubleBackoff, firstParkBackoff = oldTrouble, oldPark }()
	p := testutil.NewPKI(t, "site-1")
	var failing atomic.Bool
	failing.Store(true)
	c := coretest.Start(t, p, func(sc *core.ServerConfig) {
		store, err := core.Open(filepath.Join(t.TempDir(), "core.db"), core.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		sc.Store = poisonStore{Store: store, all: &failing}
	})
	a := startAgent(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), Options{})
	testutil.WaitFor(t, 30*time.Second, "a connection", func() bool { return a.Stats()[0].Connected })
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "alarm", Kind: edgesync.EventOp, Priority: edgesync.Critical,
		Payload: bytes.NewReader([]byte("pressure high"))})
	testutil.WaitFor(t, 30*time.Second, "the core to refuse the critical op internal", func() bool {
		return a.Stats()[0].Nacks["internal"] >= 1
	})
	failing.Store(false)
	recovered := time.Now()
	testutil.WaitFor(t, 15*time.Second, "the critical op at the core once it stores again", func() bool {
		return c.Server.Stats().OpsApplied >= 1
	})
	t.Logf("the critical op reached the core %v after it stored again", time.Since(recovered).Round(time.Millisecond))
}

// TestCoreTroubleRefusalGoesBackOnceHeld: an op the core refuses for its
// trouble (store-full, busy, shutting-down) goes back to the outbox only
// from the session's loop (account), after its worker has noted the
// refusal, so that no dispatch can lease it before the hold is on. Its
// worker gave it back first and noted the refusal after: a session woken
// in between (an op enqueued, an op's data written, a parked op due) found
// no hold, leased it and sent it again at once (CI: the trial after a
// carried-on hold came 1 ms after the refusal, not 1 s).
func TestCoreTroubleRefusalGoesBackOnceHeld(t *testing.T) {
	for _, code := range []wire.Code{wire.CodeStoreFull, wire.CodeBusy, wire.CodeShuttingDown} {
		t.Run(code.String(), func(t *testing.T) {
			ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ob.Close()
			if _, err := ob.Enqueue(t.Context(), outbox.NewOp{Endpoint: "core", Key: "ev/1", Priority: edgesync.Normal,
				Kind: edgesync.EventOp, Payload: bytes.NewReader([]byte("reading 1"))}); err != nil {
				t.Fatal(err)
			}
			ops, err := ob.Lease("core", 1, ordinary...)
			if err != nil || len(ops) != 1 {
				t.Fatalf("lease: %d ops, %v; want the op", len(ops), err)
			}
			s := &session{e: &endpoint{}, ob: ob, name: "core", log: hclog.NewNullLogger(), stats: &endpointStats{},
				keys: map[string]bool{}, deferred: map[string][]edgesync.OpID{}, order: newWriteOrder()}
			s.inflight[slotSmall] = 1
			out := s.refused(ops[0], &wire.Nack{ID: ops[0].ID, Code: code, Msg: "the core refuses"}, time.Now(), false) // its worker
			// A dispatch now, before the loop has the worker's report, may
			// lease only what the hold lets go.
			if again, err := ob.Lease("core", 1, ordinary...); err != nil || len(again) != 0 {
				t.Fatalf("after its worker settled the refusal %s: the op leasable again (%d ops, %v) before the session's loop "+
					"accounted for it; want it given back by the loop, once the hold is on", code, len(again), err)
			}
			s.account(workerDone{op: ops[0], slot: slotSmall, out: out})
			if held, _ := s.e.full.held(time.Now(), 0); !held {
				t.Errorf("after the refusal %s: no hold", code)
			}
			if again, err := ob.Lease("core", 1, ordinary...); err != nil || len(again) != 1 || again[0].ID != ops[0].ID {
				t.Errorf("after the loop accounted for the refusal %s: %d ops leasable (%v); want the op given back for the hold's trial",
					code, len(again), err)
			}
		})
	}
}
