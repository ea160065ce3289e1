package linkmon

import (
	"context"
	"encoding/binary"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/wire"
)

// TestIdleLinkSampledSlowly: a link that carries nothing goes on the idle
// schedule after IdleAfter and sends no ping at the busy rate; Busy (an
// op enqueued) pings at once and brings the busy schedule back.
func TestIdleLinkSampledSlowly(t *testing.T) {
	core := newTestCore(t)
	a := dialTestAgent(t, core, linksim.Broadband(), 31)
	cfg := testConfig()
	cfg.IdleAfter, cfg.IdleSampleInterval, cfg.IdleProbeInterval = time.Second, 10*time.Second, time.Hour
	m := startMonitor(t, cfg, a, MonitorOptions{Name: "idle"})
	pings := func() int64 {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.stats.PingBytes
	}
	// Observed for 8 busy sample intervals: no ping at the busy rate; at
	// most an idle one, or the one that confirms a change it showed (a
	// loaded machine delays a pong now and then, and a confirmed "change"
	// samples at the busy rate for idle_after before going idle again).
	quiet := func() bool {
		testutil.WaitFor(t, 15*time.Second, "the link to go idle", m.idleSt.idle.Load)
		p0 := pings()
		for range 8 {
			time.Sleep(cfg.SampleInterval) // observing, not synchronising
			if pings() > p0+200 {          // two pings of about 80 bytes
				return false
			}
		}
		return true
	}
	ok := false
	for range 5 {
		if ok = quiet(); ok {
			break
		}
	}
	if !ok {
		t.Fatalf("idle link pinged at the busy rate in 5 observations with idle_sample_interval 10s (%d ping bytes)", pings())
	}
	p0 := pings()
	m.Busy()
	testutil.WaitFor(t, 5*time.Second, "a ping right after Busy", func() bool { return pings() > p0 })
	if m.idleSt.idle.Load() {
		t.Error("still idle after Busy")
	}
}

// TestIdleLinkChangeDetected: an idle link whose RTT changes is noticed
// by its next idle ping, confirmed by a second one, which bring the busy
// schedule back; the new class is then found within the busy bound (5 s,
// as in TestSwitchOutageRecovery) after them.
func TestIdleLinkChangeDetected(t *testing.T) {
	a, cfg, m, events := idleBroadband(t, 32, "idle-change", nil)
	a.setProfile(t, linksim.SatelliteGEO())
	// The next idle ping (at most one interval away) and the one that
	// confirms it each take the new RTT (600 ms), then the busy bound.
	limit := cfg.IdleSampleInterval + 2*linksim.SatelliteGEO().Up.Delay*2 + 5*time.Second
	ev, took, ok := waitClass(t, events, limit, is(edgesync.Satellite))
	if !ok {
		t.Fatalf("satellite not detected on an idle link within %v; status %+v", limit, m.Status())
	}
	t.Logf("idle link: satellite after %v: %s", took.Round(time.Millisecond), ev.Change.Reason)
}

// TestIdleJitterNoWakes: pongs delayed at random, as a loaded machine's
// scheduler delays them on loopback (linksim jitter, uniform in
// [0, 30 ms] on the return path), are the RTT's own jitter, not a change:
// an idle link keeps its idle schedule, and at most a rare wake samples
// at the busy rate. It counts the wakes over 15 s (30 idle pings).
func TestIdleJitterNoWakes(t *testing.T) {
	core := newTestCore(t)
	loaded := linksim.Profile{Name: "loaded-loopback",
		Down: linksim.Direction{Jitter: 30 * time.Millisecond}}
	a := dialTestAgent(t, core, loaded, 33)
	cfg := testConfig()
	cfg.IdleAfter, cfg.IdleSampleInterval = time.Second, 500*time.Millisecond
	m := startMonitor(t, cfg, a, MonitorOptions{Name: "idle-jitter"})
	testutil.WaitFor(t, 15*time.Second, "the link to go idle", m.idleSt.idle.Load)
	w0 := m.Stats().IdleWakes
	const watch = 15 * time.Second // 30 idle pings, observed
	time.Sleep(watch)              // observing, not synchronising
	wakes := m.Stats().IdleWakes - w0
	t.Logf("%d full-rate wakes in %v (idle pings every %v); stats %+v", wakes, watch, cfg.IdleSampleInterval, m.Stats())
	if wakes > 1 {
		t.Errorf("%d full-rate wakes in %v of a jittery idle link (pings every %v), want at most 1", wakes, watch, cfg.IdleSampleInterval)
	}
}

// TestIdleDelayedPongsDismissed: an idle ping and the one that confirms
// it both answered 300 ms late (the core's datagram loop held up, as a
// loaded machine holds it) look like a change; the pongs taken at the
// busy rate then are on time, so the wake is dismissed: the link stays
// on the idle schedule and no bandwidth probe is sent.
func TestIdleDelayedPongsDismissed(t *testing.T) {
	core := newTestCore(t)
	var hold atomic.Int32 // pings still to answer late
	core.onDatagram = func(d []byte, _ time.Time) bool {
		// Pings only: a check train's packet held up reads as a drop of
		// the link's rate, a real reason to wake (CI saw it so under load).
		if f, _, err := wire.Parse(d); err != nil {
			return false
		} else if _, ok := f.(*wire.Ping); !ok {
			return false
		}
		if hold.Load() > 0 {
			hold.Add(-1)
			time.Sleep(300 * time.Millisecond) // the held-up core, not synchronisation
		}
		return false
	}
	a := dialTestAgent(t, core, linksim.Profile{Name: "loopback"}, 34)
	cfg := testConfig()
	cfg.IdleAfter, cfg.IdleSampleInterval = time.Second, time.Second
	m := startMonitor(t, cfg, a, MonitorOptions{Name: "idle-late", Logger: testutil.Logger(t, "idle-late")})
	// A check train that a starved CPU spreads reads a drop of the link's
	// rate, which wakes an idle link for a reason of its own (CI's load
	// did so): such a round is not this test's, and runs again, at most
	// three times.
	for round := 1; ; round++ {
		// Idle, and past the busy-rate pings that follow a class change
		// (a loaded loopback's class can still move as it goes idle).
		testutil.WaitFor(t, 15*time.Second, "the link to go idle, its class settled", func() bool {
			return m.idleSt.idle.Load() && time.Since(m.Status().Since) > cfg.IdleAfter
		})
		before := m.Stats()
		hold.Store(2)
		testutil.WaitFor(t, 20*time.Second, "the late pongs' wake to be dismissed", func() bool {
			return m.Stats().IdleDismissed > before.IdleDismissed || m.Stats().IdleWakes > before.IdleWakes
		})
		after := m.Stats()
		if after.CheckDrops > before.CheckDrops && round < 3 {
			t.Logf("round %d: a check train read a drop meanwhile; again", round)
			continue
		}
		if after.IdleWakes != before.IdleWakes {
			t.Errorf("two late pongs woke the idle link to the busy schedule; stats %+v", after)
		}
		if after.Probes != before.Probes {
			t.Errorf("%d bandwidth probes after two late pongs on an idle link, want none", after.Probes-before.Probes)
		}
		if !m.idleSt.idle.Load() {
			t.Error("the link left the idle schedule after two late pongs")
		}
		return
	}
}

// TestIdleLinkOutageDetected: an idle link that goes dark is noticed when
// its idle ping and the one sent at once to confirm it go unanswered,
// each seen at the next idle tick; the outage is then judged at the busy
// rate: within three idle intervals and two sample timeouts (about 15 s
// with the default 5 s interval; 2 s here).
func TestIdleLinkOutageDetected(t *testing.T) {
	a, cfg, m, events := idleBroadband(t, 35, "idle-outage", nil)
	dark := linksim.Broadband()
	dark.Up.LossRate, dark.Down.LossRate = 1, 1
	a.setProfile(t, dark)
	limit := 3*cfg.IdleSampleInterval + 2*cfg.SampleTimeout + time.Second
	ev, took, ok := waitClass(t, events, limit, is(edgesync.Intermittent))
	if !ok {
		t.Fatalf("outage not detected on an idle link within %v; status %+v", limit, m.Status())
	}
	t.Logf("idle link: intermittent after %v: %s", took.Round(time.Millisecond), ev.Change.Reason)
}

// idleBroadband starts a watched monitor on a broadband link (dialled with
// seed) that goes idle after 1 s and then pings every 2 s, and returns once
// the link is classed broadband and on the idle schedule. mod, if not nil,
// changes the config first.
func idleBroadband(t *testing.T, seed uint64, name string, mod func(*Config)) (*testAgent, Config, *Monitor, <-chan Event) {
	t.Helper()
	core := newTestCore(t)
	a := dialTestAgent(t, core, linksim.Broadband(), seed)
	cfg := testConfig()
	cfg.IdleAfter, cfg.IdleSampleInterval = time.Second, 2*time.Second
	if mod != nil {
		mod(&cfg)
	}
	m, events := startWatched(t, cfg, a, MonitorOptions{Name: name})
	if _, _, ok := waitClass(t, events, 10*time.Second, is(edgesync.Broadband)); !ok {
		t.Fatalf("broadband not detected within 10s; status %+v", m.Status())
	}
	testutil.WaitFor(t, 15*time.Second, "the link to go idle", m.idleSt.idle.Load)
	return a, cfg, m, events
}

// TestIdleLinkOutageWithinBound: an outage on an idle link with the
// default idle schedule, starting just after an idle ping was answered
// (the worst case: the next comes an idle interval later), is classed
// intermittent within that interval and the busy link's outage time
// (the ping's deadline, then MaxMissed more samples at the busy rate,
// about 2.3 s; docs/linkmon.md "Idle links"), 1 s more for a loaded
// machine. Before, the lost idle ping and the one sent to confirm it
// were each seen stale only at the next idle tick: 10-15 s.
func TestIdleLinkOutageWithinBound(t *testing.T) {
	core := newTestCore(t)
	a := dialTestAgent(t, core, linksim.Broadband(), 36)
	cfg := testConfig()
	cfg.IdleAfter = time.Second // the default idle schedule, sooner
	m, events := startWatched(t, cfg, a, MonitorOptions{Name: "idle-outage-bound"})
	if _, _, ok := waitClass(t, events, 10*time.Second, is(edgesync.Broadband)); !ok {
		t.Fatalf("broadband not detected within 10s; status %+v", m.Status())
	}
	testutil.WaitFor(t, 15*time.Second, "the link to go idle", m.idleSt.idle.Load)
	last := m.Latest().At
	testutil.WaitFor(t, 2*cfg.IdleSampleInterval, "an idle ping answered", func() bool {
		l := m.Latest()
		return !l.Stale && l.At.After(last)
	})
	a.setProfile(t, down(linksim.Broadband()))
	limit := cfg.IdleSampleInterval + 2*cfg.SampleTimeout + 3*cfg.SampleInterval + time.Second
	ev, took, ok := waitClass(t, events, limit, is(edgesync.Intermittent))
	if !ok {
		t.Fatalf("outage on an idle link not classed intermittent within %v; status %+v", limit, m.Status())
	}
	t.Logf("idle link: intermittent after %v: %s", took.Round(time.Millisecond), ev.Change.Reason)
}

// TestIdleLinkBandwidthDrop: a drop of bandwidth alone on an idle link
// (100 to 5 Mbit/s at the same RTT: pings cannot see it) is found by the
// next idle check train and its confirmation; the pings at the busy rate
// that follow carry the rebased capacity, so the class follows within
// about a second of the check, not 3 idle intervals later; the class
// change then pings the link at the busy rate, so that an outage right
// after it is classed within the busy bound (docs/design.md#goals, p95
// 4 s; 1 s more for a loaded machine), not an idle interval later.
func TestIdleLinkBandwidthDrop(t *testing.T) {
	// Only bandwidth tells the classes apart here: broadband and mobile
	// reach 300 and 450 ms of RTT, not 50 and 200 ms. A loaded machine's
	// scheduler adds tens of ms to the pongs of the 20 ms link (medians of
	// 51-85 ms, jitter 38-83 ms, with 2 spinning loops beside the test),
	// which classed it mobile from its first samples and kept it so: the
	// test failed before the drop it is about.
	bandwidthOnly := func(c *Config) {
		c.Classifier.BroadbandMaxRTT, c.Classifier.MobileMaxRTT = 300*time.Millisecond, 450*time.Millisecond
	}
	a, cfg, m, events := idleBroadband(t, 37, "idle-drop", bandwidthOnly)
	// Checks are sized for the capacity estimate: one a loaded machine
	// read 3 times too high sends trains that overflow the slower link.
	// An idle link is not probed again for minutes: measure on demand.
	sane := func() bool {
		c, _ := m.Capacity()
		return c > 50e6 && c < 150e6
	}
	for try := 0; try < 5 && !sane(); try++ {
		ctx, cancel := contextWithTimeout(10 * time.Second)
		_, err := m.Measure(ctx)
		cancel()
		t.Logf("capacity re-measured: %v", err)
	}
	if c, _ := m.Capacity(); !sane() {
		t.Fatalf("capacity estimate %s after 5 measurements of a 100 Mbit/s link", FormatBps(c))
	}
	testutil.WaitFor(t, 15*time.Second, "the link to go idle", m.idleSt.idle.Load)
	slow := linksim.Broadband()
	slow.Down.RateBps = 5e6
	drops := m.Stats().CheckDrops
	a.setProfile(t, slow)
	// The next idle check (at most one interval away), its confirmation,
	// and 3 samples at the busy rate; 2 s more for a loaded machine.
	limit := cfg.IdleSampleInterval + time.Second + 3*cfg.SampleInterval + 2*time.Second
	ev, took, ok := waitClass(t, events, limit, is(edgesync.Mobile))
	if !ok && m.Stats().CheckDrops == drops {
		// Under -race on a loaded machine the RTT's jitter reaches 10 ms
		// and more, and a low check is taken as that jitter
		// (dropBeyondJitter): no drop was confirmed. What this test is
		// about is what follows a confirmed one.
		t.Skipf("no check train confirmed the drop within %v (the path's jitter explained them); stats %+v", limit, m.Stats())
	}
	if !ok {
		t.Fatalf("bandwidth drop on an idle link not classed mobile within %v; status %+v; stats %+v", limit, m.Status(), m.Stats())
	}
	t.Logf("idle link: mobile after %v: %s", took.Round(time.Millisecond), ev.Change.Reason)
	time.Sleep(cfg.IdleAfter / 2) // within idle_after of the change: part of the scenario, not a sync
	a.setProfile(t, down(slow))
	const bound = 5 * time.Second
	ev, took, ok = waitClass(t, events, bound, is(edgesync.Intermittent))
	if !ok {
		t.Fatalf("outage after the class change not classed intermittent within %v; status %+v", bound, m.Status())
	}
	t.Logf("then an outage: intermittent after %v: %s", took.Round(time.Millisecond), ev.Change.Reason)
}

// TestIdleLatePongDismissed: an idle ping answered after its deadline (the
// core's datagram loop held up 1.2 s, as a loaded machine holds it) is a
// stale sample; the pings at the busy rate that verify it are answered,
// so the link stays idle, with no probe sent.
func TestIdleLatePongDismissed(t *testing.T) {
	core := newTestCore(t)
	var hold atomic.Int32 // pings still to answer late
	core.onDatagram = func([]byte, time.Time) bool {
		if hold.CompareAndSwap(1, 0) {
			time.Sleep(1200 * time.Millisecond) // the held-up core, not synchronisation
		}
		return false
	}
	a := dialTestAgent(t, core, linksim.Profile{Name: "loopback"}, 38)
	cfg := testConfig()
	// Idle pings 2 s apart: the held one alone is late, and the first
	// verifying ping, sent while the core is still held, a little.
	cfg.IdleAfter, cfg.IdleSampleInterval = time.Second, 2*time.Second
	m := startMonitor(t, cfg, a, MonitorOptions{Name: "idle-stale"})
	// A check train that a loaded machine misreads as a drop moves the
	// class, which wakes the link too: that try says nothing of the late
	// pong, and another is made (at most 3).
	var before, after MonitorStats
	for try := 0; try < 3; try++ {
		testutil.WaitFor(t, 15*time.Second, "the link to go idle", m.idleSt.idle.Load)
		before = m.Stats()
		hold.Store(1)
		testutil.WaitFor(t, 20*time.Second, "the late pong's verification to end", func() bool {
			return m.Stats().IdleDismissed > before.IdleDismissed || m.Stats().IdleWakes > before.IdleWakes
		})
		if after = m.Stats(); after.CheckDrops == before.CheckDrops {
			break
		}
	}
	if after.IdleWakes != before.IdleWakes {
		t.Errorf("a pong 1.2 s late woke the idle link to the busy schedule; stats before %+v, after %+v", before, after)
	}
	if after.Probes != before.Probes {
		t.Errorf("%d bandwidth probes after a late pong on an idle link, want none", after.Probes-before.Probes)
	}
	if m.Status().Class == edgesync.Intermittent {
		t.Errorf("a late pong classed the link intermittent; status %+v", m.Status())
	}
}

// smallOp sends size bytes on a new stream of a's connection and returns
// once the core has acknowledged all of them (serveStreams' running
// count), as an op's put is stored at the core.
func smallOp(t *testing.T, a *testAgent, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := a.conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("open the op's stream: %v", err)
	}
	defer st.CancelRead(0)
	defer st.CancelWrite(0)
	if _, err := st.Write(make([]byte, size)); err != nil {
		t.Fatalf("send the op: %v", err)
	}
	buf := make([]byte, 8)
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := io.ReadFull(st, buf); err != nil {
			t.Fatalf("the op's acknowledgement: %v", err)
		}
		if binary.BigEndian.Uint64(buf) >= uint64(size) {
			return
		}
	}
}

// TestBusyWakeSendsNoTrainAhead (BenchmarkPutLatencyProcesses on lte;
// docs/linkmon.md, "Idle links"): the first op after a quiet spell woke the
// idle link with Busy, and the bandwidth probe that fell due while it was
// idle started at that moment; its train (14-57 KB on the 10 Mbit/s uplink)
// queued ahead of the op, whose put took 57-86 ms to be stored instead of
// 34-42 ms. The hold on trains while the agent's own data starts began only
// at the op's first acknowledgement, after that train. Here an idle lte
// uplink whose probe is due is woken by Busy and a 2 KB op follows: no
// probe may start before the op is acknowledged, and at most one check
// train (one in flight from the idle schedule) may reach the core
// meanwhile.
func TestBusyWakeSendsNoTrainAhead(t *testing.T) {
	core := newTestCore(t)
	a := dialTestAgent(t, core, lteUplink(), 83)
	cfg := testConfig()
	cfg.IdleAfter = time.Second
	pl := &probeLog{started: make(chan struct{}, 1), trains: make(chan int, 16)}
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: pl})
	m := startMonitor(t, cfg, a, MonitorOptions{Name: "wake", Logger: log})
	waitEstimates(t, m, 1, 15*time.Second)
	// Idle, and the last probe older than ProbeInterval: a wake finds a
	// probe due, as after the benchmark's quiet spell.
	est, since := m.Stats().Estimates, time.Now()
	testutil.WaitFor(t, 30*time.Second, "the link idle with a probe due", func() bool {
		if n := m.Stats().Estimates; n != est {
			est, since = n, time.Now()
		}
		return m.Idle() && time.Since(since) > cfg.ProbeInterval+time.Second
	})
	select {
	case <-pl.started:
	default:
	}
	const size = 2 << 10
	trains0 := core.trainPackets.Load()
	start := time.Now()
	m.Busy()
	smallOp(t, a, size)
	took := time.Since(start)
	trains := core.trainPackets.Load() - trains0
	probed := len(pl.started) > 0
	t.Logf("op of %d bytes acknowledged %v after Busy; %d train packets reached the core meanwhile; probe started: %v; stats %+v",
		size, took.Round(time.Millisecond), trains, probed, m.Stats())
	if probed {
		t.Error("a bandwidth probe started between Busy and the op's acknowledgement")
	}
	capBps, _ := m.Capacity()
	if most := int64(checkPackets(capBps, 2*maxCheckDispersion)); trains > most {
		t.Errorf("%d train packets reached the core between Busy and the op's acknowledgement, want at most %d (one check train in flight)", trains, most)
	}
}
