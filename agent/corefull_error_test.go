package agent

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// The hold's corners (corefull.go) met with a raw core: a QUIC peer on
// loopback that speaks just enough of the protocol for a session and
// answers each op stream as the test says, as a core in trouble may.

// rawCore welcomes an agent on loopback, granting wire.CapOpsPerStream if
// packs is set, and answers each op stream with what
// answer returns for it: n counts the streams from 1 in the order they
// were accepted, frames are what the stream carried (read to its end).
// answer runs on the stream's own goroutine and may block until ctx,
// which ends with the test, is done. streams counts the op streams the
// agent opened. It answers no pings: the agent's link monitor must not
// probe actively (quietConfig).
func rawCore(t *testing.T, p *testutil.PKI, packs bool, answer func(ctx context.Context, n int64, frames []wire.Frame) []wire.Frame) (addr string, streams *atomic.Int64) {
	t.Helper()
	return rawCoreConns(t, p, packs, nil, answer)
}

// rawCoreConns is rawCore calling welcomed, if not nil, with each
// connection once it has been welcomed, before its op streams.
func rawCoreConns(t *testing.T, p *testutil.PKI, packs bool, welcomed func(*quic.Conn),
	answer func(ctx context.Context, n int64, frames []wire.Frame) []wire.Frame) (addr string, streams *atomic.Int64) {
	t.Helper()
	tlsConf := p.ServerTLS(t).Clone()
	tlsConf.NextProtos = []string{wire.ALPN}
	// A transport of its own, closed at the end: the listener's, closed
	// with it, went on reading while a closed connection's IDs were kept,
	// and goleak found its goroutines after the last test under load.
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	ln, err := tr.Listen(tlsConf, wire.QUICConfig(64))
	if err != nil {
		udp.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	streams = new(atomic.Int64)
	stream := func(str *quic.Stream) {
		n := streams.Add(1)
		var frames []wire.Frame
		for range 4 * wire.MaxOpsPerStream {
			f, err := wire.ReadFrame(str, wire.MaxFrameSize)
			if err != nil {
				break // io.EOF: the agent closed its side
			}
			frames = append(frames, f)
		}
		for _, f := range answer(ctx, n, frames) {
			if err := wire.WriteFrame(str, f); err != nil {
				return
			}
		}
		str.Close()
	}
	serve := func(conn *quic.Conn) {
		defer conn.CloseWithError(0, "")
		hello, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		if _, err := wire.ReadFrame(hello, wire.MaxFrameSize); err != nil {
			return
		}
		caps := wire.Capabilities(0)
		if packs {
			caps = wire.CapOpsPerStream
		}
		w := &wire.Welcome{ProbeSession: 1, Version: wire.SupportedVersions[len(wire.SupportedVersions)-1], Core: "raw",
			Caps: caps, MaxFrame: wire.MaxFrameSize, MaxOpBytes: 1 << 30, QuotaLeft: wire.QuotaUnlimited}
		if err := wire.WriteFrame(hello, w); err != nil {
			return
		}
		hello.Close()
		if welcomed != nil {
			welcomed(conn)
		}
		acceptAll(&wg, func() (*quic.Stream, error) { return conn.AcceptStream(ctx) }, stream)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		acceptAll(&wg, func() (*quic.Conn, error) { return ln.Accept(ctx) }, serve)
	}()
	t.Cleanup(func() {
		cancel()
		ln.Close()
		wg.Wait()
		tr.Close() // returns once it has stopped reading
		udp.Close()
	})
	return ln.Addr().String(), streams
}

// acceptAll runs handle, on a goroutine of wg, on each thing accept
// returns until it fails.
func acceptAll[T any](wg *sync.WaitGroup, accept func() (T, error), handle func(T)) {
	for {
		x, err := accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			handle(x)
		}()
	}
}

// opHeaders are the OP_HEADERs among frames.
func opHeaders(frames []wire.Frame) []*wire.OpHeader {
	var hs []*wire.OpHeader
	for _, f := range frames {
		if h, ok := f.(*wire.OpHeader); ok {
			hs = append(hs, h)
		}
	}
	return hs
}

// nackAll refuses every op on a stream with code.
func nackAll(frames []wire.Frame, code wire.Code) []wire.Frame {
	var out []wire.Frame
	for _, h := range opHeaders(frames) {
		out = append(out, &wire.Nack{ID: h.ID, Code: code, Msg: "the raw core refuses " + code.String()})
	}
	return out
}

// waitRefusing waits for a's core_refusing to be shown and to satisfy ok
// (nil: any), and returns it.
func waitRefusing(t *testing.T, a *Agent, what string, ok func(r *CoreRefusal) bool) CoreRefusal {
	t.Helper()
	var got CoreRefusal
	testutil.WaitFor(t, 30*time.Second, what, func() bool {
		r := mustStatus(t, a).CoreRefusing
		if r == nil || ok != nil && !ok(r) {
			return false
		}
		got = *r
		return true
	})
	return got
}

// setFor sets *v to x for the rest of t.
func setFor[T any](t testing.TB, v *T, x T) {
	old := *v
	*v = x
	t.Cleanup(func() { *v = old })
}

// rawAgent starts an agent of the raw core at addr, without the link
// monitor's probes, with ops small normal ops in its outbox before it
// starts (so that it leases them together), and waits for its
// connection.
func rawAgent(t *testing.T, p *testutil.PKI, addr string, ops int) *Agent {
	t.Helper()
	return rawAgentLog(t, p, addr, ops, testutil.Logger(t, "agent"))
}

// rawAgentLog is rawAgent logging to log.
func rawAgentLog(t *testing.T, p *testutil.PKI, addr string, ops int, log hclog.Logger) *Agent {
	t.Helper()
	a, err := New(quietConfig(coretest.AgentConfig(t, p, addr)), Options{TLS: p.ClientTLS(t, "127.0.0.1"), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	for i := range ops {
		enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("ev/%d", i), Kind: edgesync.EventOp, Priority: edgesync.Normal,
			Payload: bytes.NewReader(fmt.Appendf(nil, "reading %d", i))})
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "a connection to the raw core", func() bool { return a.Stats()[0].Connected })
	return a
}

// erroringCase is a raw core that ends every op stream with an ERROR of
// code (or, if nack, refuses every op with a NACK of it), granting several
// ops per stream if packs, and an agent with ops ops queued for it (leased
// together: one stream before the first ERROR).
type erroringCase struct {
	name  string
	code  wire.Code
	packs bool
	ops   int
	nack  bool
}

// run starts the core and the agent and waits for the first ERROR; the
// core counts the op streams it answered.
func (tc erroringCase) run(t *testing.T) (*Agent, *atomic.Int64) {
	t.Helper()
	return tc.runLogged(t, testutil.Logger(t, "agent"))
}

// runLogged is run with the agent logging to log.
func (tc erroringCase) runLogged(t *testing.T, log hclog.Logger) (*Agent, *atomic.Int64) {
	t.Helper()
	p := testutil.NewPKI(t, "site-1")
	addr, streams := rawCore(t, p, tc.packs, func(_ context.Context, _ int64, frames []wire.Frame) []wire.Frame {
		if tc.nack {
			return nackAll(frames, tc.code)
		}
		return []wire.Frame{&wire.Error{Code: tc.code, Msg: "the raw core refuses"}}
	})
	a := rawAgentLog(t, p, addr, tc.ops, log)
	testutil.WaitFor(t, 30*time.Second, "the raw core's first ERROR", func() bool { return streams.Load() >= 1 })
	return a, streams
}

// TestErrorEndingStreamHolds: a core that ends every op stream (single
// ops and packs) with an ERROR of its own trouble (internal, busy) gets
// the hold that the matching NACK gets, counted alike in the status and
// the nacks by code: before, the ops went again at once, a storm of
// streams to a core in trouble.
func TestErrorEndingStreamHolds(t *testing.T) {
	old := troubleBackoff
	troubleBackoff = 100 * time.Millisecond
	defer func() { troubleBackoff = old }()
	for _, tc := range []erroringCase{
		{name: "internal, a pack", code: wire.CodeInternal, packs: true, ops: 10},
		{name: "busy, a single op", code: wire.CodeBusy, ops: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, streams := tc.run(t)
			first := time.Now()
			// The first stream starts the hold; then one trial after
			// each backoff, doubling: 0.1 s, 0.2 s, 0.4 s.
			const want = 4
			testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%d streams", want), func() bool { return streams.Load() >= want })
			r := mustStatus(t, a).CoreRefusing
			if r != nil {
				first = r.Since // the first refusal, which began the hold
			}
			took := time.Since(first)
			least := troubleBackoff * (1 + 2 + 4)
			t.Logf("%d streams ended with ERROR %s in %v", want, tc.code, took)
			if took < least {
				t.Errorf("%d streams ended with ERROR %s came in %v: the agent sent the ops again without the hold (at least %v)", want, tc.code, took, least)
			}
			if r == nil || r.Code != tc.code.String() || r.Refusals < 3 {
				t.Errorf("status while the core ends every stream with ERROR %s: core_refusing %+v, want that code and its refusals", tc.code, r)
			}
			if n := a.Stats()[0].Nacks[tc.code.String()]; n < 3 {
				t.Errorf("nacks %s: %d, want the ERRORs counted as refusals (at least 3)", tc.code, n)
			}
			if ob, err := a.Outbox().Stats(); err != nil || ob.Total.Ops != tc.ops {
				t.Errorf("the outbox holds %d ops (%v); want all %d kept", ob.Total.Ops, err, tc.ops)
			}
		})
	}
}

// TestTrialRefusedOtherwiseClearsStatus: the hold's trial is refused for
// a reason of the op's own (quota), not the core's trouble, and nothing
// is stored after. core_refusing must not go on saying the store is
// full: the core's answer did not say so.
func TestTrialRefusedOtherwiseClearsStatus(t *testing.T) {
	old := firstFullBackoff
	firstFullBackoff = 100 * time.Millisecond
	defer func() { firstFullBackoff = old }()
	p := testutil.NewPKI(t, "site-1")
	addr, streams := rawCore(t, p, false, func(_ context.Context, n int64, frames []wire.Frame) []wire.Frame {
		if n == 1 {
			return nackAll(frames, wire.CodeStoreFull)
		}
		return nackAll(frames, wire.CodeQuota)
	})
	a := rawAgent(t, p, addr, 1)
	testutil.WaitFor(t, 30*time.Second, "the op refused store-full", func() bool {
		r := mustStatus(t, a).CoreRefusing
		return r != nil && r.Code == "store-full"
	})
	testutil.WaitFor(t, 30*time.Second, "the trial refused quota", func() bool { return a.Stats()[0].Nacks["quota"] >= 1 })
	testutil.WaitFor(t, 10*time.Second, "core_refusing to stop saying store-full once the trial was refused quota", func() bool {
		r := mustStatus(t, a).CoreRefusing
		return r == nil || r.Code != "store-full"
	})
	if n := streams.Load(); n != 2 {
		t.Errorf("%d streams, want 2: the op refused store-full, then its trial refused quota (the op parked since)", n)
	}
}

// TestRefusalOfOpSentBeforeHoldKeepsBackoff: two ops in flight when the
// core starts refusing busy; the second's refusal comes after the hold
// has ended. It was sent before the hold began: it must not lengthen the
// backoff as a refused trial does, and the trial goes at once.
func TestRefusalOfOpSentBeforeHoldKeepsBackoff(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	both, second := make(chan struct{}), make(chan struct{})
	var bothOnce sync.Once
	addr, streams := rawCore(t, p, false, func(ctx context.Context, n int64, frames []wire.Frame) []wire.Frame {
		if n == 2 {
			bothOnce.Do(func() { close(both) })
		}
		var gate <-chan struct{}
		switch n {
		case 1:
			gate = both // once both ops are in flight
		case 2:
			gate = second // once the test says
		default:
			gate = ctx.Done() // the trial: never, in this test
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return nil
		}
		return nackAll(frames, wire.CodeBusy)
	})
	a := rawAgent(t, p, addr, 2)
	first := waitRefusing(t, a, "the first op refused busy", nil)
	testutil.WaitFor(t, 30*time.Second, "the hold to end", func() bool { return time.Now().After(first.NextTry) })
	close(second)
	after := waitRefusing(t, a, "the second op refused busy", func(r *CoreRefusal) bool { return r.Refusals >= 2 })
	if !after.NextTry.Equal(first.NextTry) {
		t.Errorf("next try moved from %v to %v by the refusal of an op sent before the hold began (backoff %v after the first refusal)",
			first.NextTry.Format(time.RFC3339Nano), after.NextTry.Format(time.RFC3339Nano), first.NextTry.Sub(first.Since))
	}
	testutil.WaitFor(t, 10*time.Second, "the trial", func() bool { return streams.Load() >= 3 })
}

// TestFailoverStartsWithTrial: the core at the endpoint's first address
// refuses store-full and the hold is a minute long; then that core shuts
// down and the agent fails over to the second address, whose core has
// room. The hold was the first core's: the second gets a trial at once,
// and the op reaches it long before the first core's backoff ends.
func TestFailoverStartsWithTrial(t *testing.T) {
	old := firstFullBackoff
	firstFullBackoff = time.Minute
	defer func() { firstFullBackoff = old }()
	p := testutil.NewPKI(t, "site-1")
	full := coretest.Start(t, p, func(sc *core.ServerConfig) { sc.Store = noRoomForData{sc.Store.(*core.Store)} })
	room := coretest.Start(t, p, nil)
	cfg := quietConfig(coretest.AgentConfig(t, p, full.Addr.String()))
	cfg.Endpoints[0].Addresses = []string{full.Addr.String(), room.Addr.String()}
	a := startAgent(t, p, cfg, Options{})
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "ev/1", Kind: edgesync.EventOp, Priority: edgesync.Normal,
		Payload: bytes.NewReader([]byte("reading 1"))})
	testutil.WaitFor(t, 30*time.Second, "the first core to refuse the op store-full", func() bool {
		return mustStatus(t, a).CoreRefusing != nil
	})
	full.Stop()
	testutil.WaitFor(t, 30*time.Second, "the agent to fail over to the second core", func() bool {
		st := mustStatus(t, a)
		return st.Connected && st.Address == room.Addr.String()
	})
	moved := time.Now()
	testutil.WaitFor(t, 20*time.Second, "the op at the second core, before the first core's backoff (1 min) ends", func() bool {
		return room.Server.Stats().OpsApplied >= 1 && outboxEmpty(a)
	})
	t.Logf("the op reached the second core %v after the failover", time.Since(moved).Round(time.Millisecond))
	if r := mustStatus(t, a).CoreRefusing; r != nil {
		t.Errorf("core_refusing %+v after the second core stored the op, want none", r)
	}
}

// TestHoldAcrossReconnect: a new connection to the same core keeps the
// hold; one to another address sends its trial at once, and a refusal of
// that trial backs off from the first backoff, not the previous core's,
// and is the status's first refusal.
func TestHoldAcrossReconnect(t *testing.T) {
	var f coreFull
	log := hclog.NewNullLogger()
	t0 := time.Now()
	f.connected("core-a:7443", t0)
	f.refused(t0, t0, wire.CodeStoreFull, "store full", log)
	at := t0.Add(firstFullBackoff)
	f.refused(at, at, wire.CodeStoreFull, "store full", log) // a refused trial: 2 × the first backoff
	now := at.Add(time.Second)
	f.connected("core-a:7443", now)
	if held, until := f.held(now, 0); !held || !until.Equal(at.Add(2*firstFullBackoff)) {
		t.Fatalf("reconnected to the same core: held %v until %v, want held until %v", held, until.Sub(t0), at.Add(2*firstFullBackoff).Sub(t0))
	}
	f.connected("core-b:7443", now)
	if held, _ := f.held(now, 0); held {
		t.Fatal("connected to another core: held, want its trial at once")
	}
	if held, _ := f.held(now, 1); !held {
		t.Fatal("connected to another core: not held while its trial is in flight")
	}
	later := now.Add(time.Millisecond)
	f.refused(now, later, wire.CodeStoreFull, "store full", log)
	if _, until := f.held(later, 0); until.Sub(later) != firstFullBackoff {
		t.Errorf("the other core refused its trial: backoff %v, want the first %v", until.Sub(later), firstFullBackoff)
	}
	if r := f.status(); r == nil || r.Refusals != 1 || !r.Since.Equal(later) {
		t.Errorf("status %+v, want the other core's hold alone: its 1 refusal, since it", r)
	}
}

// TestErrorOfTheOpParks: a core that ends every op stream with an ERROR
// that blames the agent's frames (bad-request, too-large: a core of
// another version, stricter limits) refuses the same op again however
// often it comes. The op is parked as one refused with that NACK is,
// kept in the outbox, and the rest flows past it; before, it went again
// at once, a storm of streams.
func TestErrorOfTheOpParks(t *testing.T) {
	for _, tc := range []erroringCase{
		{name: "bad-request, a pack", code: wire.CodeBadRequest, packs: true, ops: 10},
		{name: "too-large, a single op", code: wire.CodeTooLarge, ops: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, streams := tc.run(t)
			// Each refusal parks one op for 10 s: a pack of n ops gives up
			// to n streams before every op is parked, a single op one.
			testutil.WaitFor(t, 10*time.Second, "the ops parked", func() bool { return a.Stats()[0].Parked >= int64(tc.ops) })
			parked := streams.Load()
			time.Sleep(time.Second) // what we assert is that nothing happens for a while
			if n := streams.Load() - parked; n > 0 {
				t.Errorf("%d streams in the second after every op was parked: an op refused ERROR %s went again without its backoff", n, tc.code)
			}
			if n := a.Stats()[0].Nacks[tc.code.String()]; n < int64(tc.ops) {
				t.Errorf("nacks %s: %d, want the ERRORs counted as refusals (at least %d)", tc.code, n, tc.ops)
			}
			if ob, err := a.Outbox().Stats(); err != nil || ob.Total.Ops != tc.ops {
				t.Errorf("the outbox holds %d ops (%v); want all %d kept", ob.Total.Ops, err, tc.ops)
			}
		})
	}
}

// TestFailoverStatusDescribesNewCore: the core at the first address
// refuses store-full; the agent fails over to the second, a raw core that
// holds its answer to the trial until the test has looked, then refuses
// store-full too. core_refusing must describe the core the agent talks
// to: nothing while the new core has refused nothing, then that core's
// refusals alone, since its first.
func TestFailoverStatusDescribesNewCore(t *testing.T) {
	setFor(t, &firstFullBackoff, time.Minute)
	p := testutil.NewPKI(t, "site-1")
	full := coretest.Start(t, p, func(sc *core.ServerConfig) { sc.Store = noRoomForData{sc.Store.(*core.Store)} })
	looked := make(chan struct{})
	addr, streams := rawCore(t, p, false, func(ctx context.Context, _ int64, frames []wire.Frame) []wire.Frame {
		select {
		case <-looked:
		case <-ctx.Done():
			return nil
		}
		return nackAll(frames, wire.CodeStoreFull)
	})
	cfg := quietConfig(coretest.AgentConfig(t, p, full.Addr.String()))
	cfg.Endpoints[0].Addresses = []string{full.Addr.String(), addr}
	a := startAgent(t, p, cfg, Options{})
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "ev/1", Kind: edgesync.EventOp, Priority: edgesync.Normal,
		Payload: bytes.NewReader([]byte("reading 1"))})
	first := waitRefusing(t, a, "the first core to refuse the op store-full", nil)
	full.Stop()
	testutil.WaitFor(t, 30*time.Second, "the trial at the second core", func() bool { return streams.Load() >= 1 })
	moved := time.Now()
	if r := mustStatus(t, a).CoreRefusing; r != nil {
		t.Errorf("core_refusing while the second core has refused nothing: %+v, want none (the first core's refusal since %v)",
			r, first.Since.Format(time.RFC3339Nano))
	}
	close(looked)
	r := waitRefusing(t, a, "the second core to refuse the trial", func(r *CoreRefusal) bool { return r.NextTry.After(moved) })
	if r.Since.Before(moved) || r.Refusals != 1 {
		t.Errorf("core_refusing after the second core refused its trial: since %v (the move at %v, the first core's refusal %v), %d refusals; want since the second core's refusal, 1 refusal",
			r.Since.Format(time.RFC3339Nano), moved.Format(time.RFC3339Nano), first.Since.Format(time.RFC3339Nano), r.Refusals)
	}
}

// TestHoldBackoffCarriesOnAfterTrialRefusedOtherwise: the hold's trial is
// refused quota (the op's own reason), which ends the hold; the core is
// still full and refuses the next op store-full. That starts no new
// episode: the core has said full since its first refusal, so the hold
// goes on from the backoff it had reached (doubled, as for a refused
// trial), with its since and refusals, not from the first backoff, which
// let a burst of ops go after every such trial.
func TestHoldBackoffCarriesOnAfterTrialRefusedOtherwise(t *testing.T) {
	setFor(t, &firstFullBackoff, 500*time.Millisecond)
	p := testutil.NewPKI(t, "site-1")
	var mu sync.Mutex
	answered := map[int64]time.Time{} // when the core answered stream n
	addr, streams := rawCore(t, p, false, func(_ context.Context, n int64, frames []wire.Frame) []wire.Frame {
		defer func() {
			mu.Lock()
			answered[n] = time.Now()
			mu.Unlock()
		}()
		if n == 3 {
			return nackAll(frames, wire.CodeQuota) // the hold's trial
		}
		return nackAll(frames, wire.CodeStoreFull)
	})
	// Two ops go at once (streams 1 and 2, refused store-full: the hold),
	// one as the trial (3: quota, parked), the other after it (4: store
	// full again), and that one as the next trial (5).
	a := rawAgent(t, p, addr, 2)
	first := waitRefusing(t, a, "the first hold", nil)
	testutil.WaitFor(t, 30*time.Second, "the op after the trial refused quota refused store-full", func() bool { return streams.Load() >= 4 })
	r := waitRefusing(t, a, "core_refusing after it", func(r *CoreRefusal) bool { return r.NextTry.After(first.NextTry) })
	testutil.WaitFor(t, 30*time.Second, "the next trial", func() bool { return streams.Load() >= 5 })
	mu.Lock()
	gap := answered[5].Sub(answered[4])
	mu.Unlock()
	t.Logf("the next trial came %v after the core refused store-full again (first backoff %v)", gap, firstFullBackoff)
	if least := 2 * firstFullBackoff; gap < least {
		t.Errorf("the next trial came %v after the core refused store-full again, want the hold's backoff carried on and doubled (at least %v), not the first backoff %v again",
			gap, least, firstFullBackoff)
	}
	if !r.Since.Equal(first.Since) || r.Refusals != 3 {
		t.Errorf("core_refusing once the core refuses store-full again: since %v, %d refusals; want the episode carried on: since %v, 3 refusals",
			r.Since.Format(time.RFC3339Nano), r.Refusals, first.Since.Format(time.RFC3339Nano))
	}
}

// TestEndedHoldCarriesOnOnlyForItsCore: a hold that a trial refused
// otherwise ended goes on at the next refusal of the core's trouble only
// if nothing was stored since, the agent is still on the same core, and
// it comes within the longest backoff; else the next refusal starts
// afresh from the first backoff.
func TestEndedHoldCarriesOnOnlyForItsCore(t *testing.T) {
	log := hclog.NewNullLogger()
	for _, tc := range []struct {
		name    string
		between func(f *coreFull, now time.Time) time.Time // returns when the next refusal comes
		carried bool
	}{
		{"refused again soon", func(_ *coreFull, now time.Time) time.Time { return now }, true},
		{"an op stored between", func(f *coreFull, now time.Time) time.Time { f.stored(log); return now }, false},
		{"moved to another core", func(f *coreFull, now time.Time) time.Time { f.connected("core-b:7443", now); return now }, false},
		{"refused again after the longest backoff", func(_ *coreFull, now time.Time) time.Time { return now.Add(maxFullBackoff) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f coreFull
			t0 := time.Now().Add(-time.Second)
			f.connected("core-a:7443", t0)
			f.refused(t0, t0, wire.CodeStoreFull, "store full", log)
			trial := t0.Add(firstFullBackoff)
			f.answered(trial, wire.CodeQuota, log) // the trial, refused otherwise: the hold ends
			if r := f.status(); r != nil {
				t.Fatalf("status after the trial was refused quota: %+v, want none", r)
			}
			at := tc.between(&f, time.Now())
			f.refused(at, at, wire.CodeStoreFull, "store full", log)
			r := f.status()
			_, until := f.held(at, 0)
			want, since, refusals := firstFullBackoff, at, int64(1)
			if tc.carried {
				want, since, refusals = 2*firstFullBackoff, t0, 2
			}
			if r == nil || until.Sub(at) != want || !r.Since.Equal(since) || r.Refusals != refusals {
				t.Errorf("after the next store-full: backoff %v, status %+v; want backoff %v, since %v, %d refusals",
					until.Sub(at), r, want, since.Sub(t0), refusals)
			}
		})
	}
}

// TestRefusalIsNotSentAgainAtOnce: a core that answers every op with the
// same refusal, whatever its code (an ERROR that ends the stream or a
// NACK), must not get the op again at once: sending it unchanged only
// meets the same answer. A core of another version that does not know
// the op (unknown-op, version, a code this agent does not know), one that
// keeps finding it corrupt or its hash wrong although this outbox holds
// it intact, one that says a full op's delta base is wrong, or that an op
// without a TTL expired: each op goes at most about once in the 2 s after
// the first refusal (it is parked), is kept in the outbox and counted in
// the nacks by code. Before, each of these was a hot loop of streams.
func TestRefusalIsNotSentAgainAtOnce(t *testing.T) {
	const window = 2 * time.Second
	for _, tc := range []erroringCase{
		{name: "ERROR unknown-op", code: wire.CodeUnknownOp, ops: 1},
		{name: "ERROR corrupt, a pack", code: wire.CodeCorrupt, packs: true, ops: 10},
		{name: "ERROR corrupt", code: wire.CodeCorrupt, ops: 1},
		{name: "ERROR hash-mismatch", code: wire.CodeHashMismatch, ops: 1},
		{name: "ERROR base-mismatch", code: wire.CodeBaseMismatch, ops: 1},
		{name: "ERROR expired", code: wire.CodeExpired, ops: 1},
		{name: "ERROR version", code: wire.CodeVersion, ops: 1},
		{name: "ERROR unknown-agent", code: wire.CodeUnknownAgent, ops: 1},
		{name: "ERROR of a code this agent does not know", code: 99, ops: 1},
		{name: "NACK corrupt", code: wire.CodeCorrupt, ops: 1, nack: true},
		{name: "NACK hash-mismatch", code: wire.CodeHashMismatch, ops: 1, nack: true},
		{name: "NACK base-mismatch", code: wire.CodeBaseMismatch, ops: 1, nack: true},
		{name: "NACK expired", code: wire.CodeExpired, ops: 1, nack: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs testutil.Buffer
			a, streams := tc.runLogged(t, teeLogger(t, "agent", &logs))
			start := streams.Load()
			time.Sleep(window) // what we measure is how many streams come in a while
			n := streams.Load() - start + 1
			t.Logf("%d streams in the %v after the first refusal %s", n, window, tc.code)
			// Each op is refused once and parked (10 s): a pack of n ops
			// takes up to n streams, one op one.
			if n > int64(tc.ops)+1 {
				t.Errorf("%d streams in the %v after the first refusal %s of %d ops: the agent sent the ops again at once", n, window, tc.code, tc.ops)
			}
			if got := a.Stats()[0].Nacks[nackLabel(tc.code)]; got < 1 {
				t.Errorf("nacks %s: %d, want the refusals counted", tc.code, got)
			}
			if ob, err := a.Outbox().Stats(); err != nil || ob.Total.Ops != tc.ops {
				t.Errorf("the outbox holds %d ops (%v); want all %d kept", ob.Total.Ops, err, tc.ops)
			}
			if tc.code == wire.CodeUnknownOp {
				line := grepLines(logs.String(), "unknown-op")
				if !strings.Contains(line, "[ERROR]") || !strings.Contains(line, "same version") {
					t.Errorf("the agent's log of the refusal unknown-op, want an ERROR that tells the operator to check that the core and this agent run the same version:\n%s", line)
				}
			}
		})
	}
}

// TestCorruptRefusalChecksTheOutbox: a core that finds an op corrupt
// (NACK or ERROR corrupt) may be right: the op's bytes may have changed
// on this agent's disk. The agent checks the op against the outbox's
// checksums, as it does on hash-mismatch, and quarantines it if damaged,
// so that it is never sent again; the intact ops stay queued.
func TestCorruptRefusalChecksTheOutbox(t *testing.T) {
	for _, nack := range []bool{true, false} {
		t.Run(fmt.Sprintf("nack=%v", nack), func(t *testing.T) {
			p := testutil.NewPKI(t, "site-1")
			addr, _ := rawCore(t, p, false, func(_ context.Context, _ int64, frames []wire.Frame) []wire.Frame {
				if nack {
					return nackAll(frames, wire.CodeCorrupt)
				}
				return []wire.Frame{&wire.Error{Code: wire.CodeCorrupt, Msg: "the raw core finds the op corrupt"}}
			})
			cfg := quietConfig(coretest.AgentConfig(t, p, addr))
			payloads := map[string][]byte{}
			for i := range 3 {
				payloads[fmt.Sprintf("obj/%d", i)] = testutil.RandomBytes(uint64(i), 64<<10)
			}
			ops := fillStopped(t, p, cfg, payloads)
			const victim = "obj/1"
			testutil.Damage(t, cfg.OutboxPath(), payloads[victim], len(payloads[victim])/2-256, 512)
			a := startAgent(t, p, cfg, Options{})
			testutil.WaitFor(t, 30*time.Second, "the damaged op quarantined", func() bool { return mustStatus(t, a).Quarantined.Ops == 1 })
			r, err := a.VerifyOutbox(context.Background())
			if err != nil || len(r.Quarantined) != 1 || r.Quarantined[0].ID != ops[victim].ID {
				t.Errorf("verify: %+v, %v; want op %s (%s) alone quarantined", r, err, ops[victim].ID, victim)
			}
			if ob, err := a.Outbox().Stats(); err != nil || ob.Total.Ops != len(payloads)-1 {
				t.Errorf("the outbox holds %d ops (%v); want the %d intact ones kept", ob.Total.Ops, err, len(payloads)-1)
			}
		})
	}
}

// TestBrokenAnswerIsNeitherTakenNorSentAgainAtOnce: a core whose answer
// to an op breaks the protocol (it acknowledges or refuses another op,
// answers with a frame that is no answer, or ends the stream without
// one) has not stored the op: it stays in the outbox. Sending it again at
// once would only meet the same answer: it is parked, logged as the
// core's broken answer, and counted in no nacks (the core refused
// nothing).
func TestBrokenAnswerIsNeitherTakenNorSentAgainAtOnce(t *testing.T) {
	const window = 2 * time.Second
	for _, tc := range []struct {
		name   string
		answer func(frames []wire.Frame) []wire.Frame
	}{
		{"an ACK of another op", func([]wire.Frame) []wire.Frame {
			return []wire.Frame{&wire.Ack{IDs: []edgesync.OpID{edgesync.OpID{7, 7}}}}
		}},
		{"a NACK of another op", func([]wire.Frame) []wire.Frame {
			return []wire.Frame{&wire.Nack{ID: edgesync.OpID{7, 7}, Code: wire.CodeQuota, Msg: "quota"}}
		}},
		{"a frame that is no answer", func([]wire.Frame) []wire.Frame {
			return []wire.Frame{&wire.Welcome{Version: 1, Core: "raw", MaxFrame: wire.MaxFrameSize}}
		}},
		{"no answer, the stream ended", func([]wire.Frame) []wire.Frame { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var logs testutil.Buffer
			p := testutil.NewPKI(t, "site-1")
			addr, streams := rawCore(t, p, false, func(_ context.Context, _ int64, frames []wire.Frame) []wire.Frame { return tc.answer(frames) })
			a := rawAgentLog(t, p, addr, 1, teeLogger(t, "agent", &logs))
			testutil.WaitFor(t, 30*time.Second, "the raw core's first answer", func() bool { return streams.Load() >= 1 })
			start := streams.Load()
			time.Sleep(window) // what we measure is how many streams come in a while
			n := streams.Load() - start + 1
			t.Logf("%d streams in the %v after the first broken answer (%s)", n, window, tc.name)
			if n > 2 {
				t.Errorf("%d streams in the %v after the first broken answer (%s): the agent sent the op again at once", n, window, tc.name)
			}
			if ob, err := a.Outbox().Stats(); err != nil || ob.Total.Ops != 1 {
				t.Errorf("the outbox holds %d ops (%v); want the op kept: the core did not store it", ob.Total.Ops, err)
			}
			if st := a.Stats()[0]; len(st.Nacks) != 0 {
				t.Errorf("nacks %v: want none, the core answered nothing about the op", st.Nacks)
			}
			if line := grepLines(logs.String(), "breaks the protocol"); !strings.Contains(line, "[ERROR]") {
				t.Errorf("the agent's log, want an ERROR that the core's answer breaks the protocol:\n%s", line)
			}
		})
	}
}

// TestHelloRefusalSaysWhy: a core that refuses the agent at hello (it is
// not in the core's agent list) was reached: the agent's log must not say
// it cannot reach the core, but that the core refuses it, why, and what to
// do; the status's last error says the core's reason.
func TestHelloRefusalSaysWhy(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c := coretest.Start(t, p, func(sc *core.ServerConfig) { sc.Allow = func(string) (int64, bool) { return 0, false } })
	var logs testutil.Buffer
	a := startAgent(t, p, quietConfig(coretest.AgentConfig(t, p, c.Addr.String())), Options{Logger: teeLogger(t, "agent", &logs)})
	testutil.WaitFor(t, 30*time.Second, "the refusal logged", func() bool { return strings.Contains(logs.String(), "retrying with backoff") })
	line := grepLines(logs.String(), "retrying with backoff")
	if strings.Contains(line, "cannot reach the core") || !strings.Contains(line, "refuses this agent") ||
		!strings.Contains(line, "unknown-agent") || !strings.Contains(line, "agent list") {
		t.Errorf("the agent's log of a core that refuses it at hello, want that the core refuses it (unknown-agent), and to add it to the core's agents:\n%s", line)
	}
	if e := mustStatus(t, a).LastError; e == nil || !strings.Contains(e.Error, "not in the core's agent list") {
		t.Errorf("last_error %+v, want the core's reason", e)
	}
}

// TestCoreClosingEachConnectionBacksOff: a core that welcomes the agent
// and closes the connection with a failure of its own (internal) as soon
// as the agent opens an op stream gets the next connection after the dial
// backoff (0.5 s doubling), as a core that cannot be reached does, not at
// once: a session that did not outlive shortSession does not reset the
// backoff. (A core that shuts down still has the agent dial again, or
// fail over, at once.)
func TestCoreClosingEachConnectionBacksOff(t *testing.T) {
	const window = 2 * time.Second
	p := testutil.NewPKI(t, "site-1")
	var conns atomic.Int64
	addr, _ := rawCoreConns(t, p, false, func(conn *quic.Conn) {
		conns.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := conn.AcceptStream(ctx); err == nil {
			conn.CloseWithError(quic.ApplicationErrorCode(wire.CodeInternal), "the raw core closes the connection at the first op")
		}
	}, func(context.Context, int64, []wire.Frame) []wire.Frame { return nil })
	a := startAgent(t, p, quietConfig(coretest.AgentConfig(t, p, addr)), Options{})
	enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "ev/1", Kind: edgesync.EventOp, Priority: edgesync.Normal,
		Payload: strings.NewReader("reading 1")})
	testutil.WaitFor(t, 30*time.Second, "the first connection", func() bool { return conns.Load() >= 1 })
	start := conns.Load()
	time.Sleep(window) // what we measure is how many connections come in a while
	n := conns.Load() - start
	t.Logf("%d connections in the %v after the first, each closed by the core at its first op", n, window)
	if n > 4 { // 0.5 s + 1 s: 2 connections, and 2 to spare
		t.Errorf("%d connections in the %v after the first, each closed by the core at its first op: the agent connects again without the dial backoff", n, window)
	}
}

// TestBaseMismatchOfADeltaGoesAgainInFull: an op that went as a delta and
// that the core refuses base-mismatch goes again at once, in full, even
// when its base was dropped between the send and the answer (evicted by
// the base cache's bounds, or dropped for another op's refusal). Decided
// by whether a base was still held, it was parked for 10 s with an ERROR
// that it "went in full" (review of this stop's refusals).
func TestBaseMismatchOfADeltaGoesAgainInFull(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	const key = "state/pump-1"
	var a atomic.Pointer[Agent]
	modes := make(chan codec.Mode, 8)
	addr, _ := rawCore(t, p, false, func(_ context.Context, n int64, frames []wire.Frame) []wire.Frame {
		hs := opHeaders(frames)
		if len(hs) != 1 {
			return nil
		}
		modes <- codec.Mode(hs[0].Mode)
		if n == 2 {
			// The version sent as a delta: its base goes before the answer.
			a.Load().bases.drop("core", key)
			return []wire.Frame{&wire.Nack{ID: hs[0].ID, Code: wire.CodeBaseMismatch, Msg: "the raw core holds another base"}}
		}
		return []wire.Frame{&wire.Ack{IDs: []edgesync.OpID{hs[0].ID}}}
	})
	cfg := quietConfig(coretest.AgentConfig(t, p, addr))
	for _, c := range edgesync.LinkClasses() {
		cfg.Profiles[c] = config.Profile{Mode: edgesync.SyncDelta} // whatever the class the RTT gives
	}
	var logs testutil.Buffer
	ag, err := New(cfg, Options{TLS: p.ClientTLS(t, "127.0.0.1"), Logger: teeLogger(t, "agent", &logs)})
	if err != nil {
		t.Fatal(err)
	}
	a.Store(ag)
	t.Cleanup(func() { ag.Close() })
	if err := ag.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	v1, v2 := twoVersions()
	put, next := stateVersions(t, ag, key, modes, func() string { return grepLines(logs.String(), "refused") })
	put(v1)
	if m := next("version 1"); m.IsDelta() {
		t.Fatalf("version 1 went as %v with no base", m)
	}
	testutil.WaitFor(t, 10*time.Second, "version 1 acknowledged", func() bool { return outboxEmpty(ag) })
	put(v2)
	if m := next("version 2"); !m.IsDelta() {
		t.Fatalf("version 2 went as %v; want a delta on version 1 (the test's premise)", m)
	}
	if m := next("version 2 again, after its base-mismatch"); m.IsDelta() {
		t.Errorf("version 2 went again as %v; want it in full", m)
	}
	testutil.WaitFor(t, 10*time.Second, "version 2 acknowledged", func() bool { return outboxEmpty(ag) })
	if line := grepLines(logs.String(), "went in full"); line != "" {
		t.Errorf("the agent logged that the delta went in full:\n%s", line)
	}
}
