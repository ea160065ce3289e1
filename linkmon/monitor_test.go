package linkmon

import (
	"context"
	"errors"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// TestProfilesClassified classifies each built-in profile through a real
// QUIC connection shaped by linksim, the agent's uplink carrying the
// profile's headline rate.
func TestProfilesClassified(t *testing.T) {
	cases := []struct {
		profile   linksim.Profile
		want      edgesync.LinkClass
		estimates int // bandwidth estimates to wait for (1 % budget on satellite)
	}{
		{linksim.Fiber(), edgesync.Broadband, 2},
		{linksim.Broadband(), edgesync.Broadband, 2},
		{linksim.DSL(), edgesync.Mobile, 2},
		{linksim.LTE(), edgesync.Mobile, 2},
		{linksim.SatelliteGEO(), edgesync.Satellite, 2},
		{linksim.VeryBad(), edgesync.Satellite, 1},
	}
	core := newTestCore(t)
	for i, tc := range cases {
		t.Run(tc.profile.Name, func(t *testing.T) {
			a := dialTestAgent(t, core, tc.profile, uint64(100+i))
			m, events := startWatched(t, testConfig(), a, MonitorOptions{Name: tc.profile.Name})
			ev, took, ok := waitClass(t, events, 10*time.Second, isNot(edgesync.Unknown))
			if !ok {
				t.Fatalf("no class within 10s; status %+v", m.Status())
			}
			// The first class may rest on RTT before the first train;
			// give the bandwidth a few probes to settle.
			deadline := time.Now().Add(8 * time.Second)
			for m.Status().Class != tc.want && time.Now().Before(deadline) {
				waitClass(t, events, time.Until(deadline), is(tc.want))
			}
			waitEstimates(t, m, tc.estimates, 15*time.Second)
			capBps, _ := m.Capacity()
			st := m.Status()
			t.Logf("%s: first %v after %v (%s); now %v, median %s, capacity %s, configured %s",
				tc.profile.Name, ev.Change.New, took.Round(time.Millisecond), ev.Change.Reason,
				st.Class, st.Median, FormatBps(capBps), FormatBps(float64(tc.profile.Down.RateBps)))
			if st.Class != tc.want {
				t.Fatalf("%s classified %v, want %v", tc.profile.Name, st.Class, tc.want)
			}
		})
	}
}

// waitEstimates waits until the monitor has n bandwidth estimates.
func waitEstimates(t testing.TB, m *Monitor, n int, limit time.Duration) {
	t.Helper()
	if !testutil.Poll(limit, func() bool { return m.Stats().Estimates >= n }) {
		t.Fatalf("%d bandwidth estimates within %v, want %d; stats %+v", m.Stats().Estimates, limit, n, m.Stats())
	}
}

// TestIntermittentProfile: the intermittent profile (fixed 3 s windows
// here instead of random 30 s / 10 s ones, to keep the test short) becomes
// intermittent within 5 s of its first outage and recovers after it.
func TestIntermittentProfile(t *testing.T) {
	core := newTestCore(t)
	p := linksim.Intermittent()
	calm := p.Clone()
	calm.Outages = nil
	a := dialTestAgent(t, core, calm, 11)
	m, events := startWatched(t, testConfig(), a, MonitorOptions{Name: "intermittent"})
	if _, _, ok := waitClass(t, events, 10*time.Second, isNot(edgesync.Unknown)); !ok {
		t.Fatalf("no class within 10s; status %+v", m.Status())
	}
	before := m.Status().Class
	p.Outages = &linksim.Outages{Up: 3 * time.Second, Down: 3500 * time.Millisecond}
	a.setProfile(t, p)
	// Up for 3 s, then down: intermittent within 5 s of the cut.
	ev, took, ok := waitClass(t, events, 3*time.Second+5*time.Second, is(edgesync.Intermittent))
	if !ok {
		t.Fatalf("%v: not intermittent within 5s of the outage; status %+v", before, m.Status())
	}
	t.Logf("%v -> intermittent %v after the profile switch (outage at 3s): %s", before, took.Round(time.Millisecond), ev.Change.Reason)
	ev, took, ok = waitClass(t, events, 8*time.Second, isNot(edgesync.Intermittent))
	if !ok {
		t.Fatalf("no recovery within 8s; status %+v", m.Status())
	}
	t.Logf("recovered to %v after %v: %s", ev.Change.New, took.Round(time.Millisecond), ev.Change.Reason)
}

// down is a profile that loses every packet: a cut link.
func down(p linksim.Profile) linksim.Profile {
	p = p.Clone()
	p.Name = p.Name + "-down"
	p.Up.LossRate, p.Down.LossRate = 1, 1
	return p
}

// TestSwitchOutageRecovery: a profile switch to a slower link, back to a
// faster one, and an outage are each detected within 5 s; the link is
// recognised again after the outage.
func TestSwitchOutageRecovery(t *testing.T) {
	core := newTestCore(t)
	a := dialTestAgent(t, core, linksim.Broadband(), 21)
	dir := t.TempDir()
	m, events := startWatched(t, testConfig(), a, MonitorOptions{Name: "switch", StatePath: dir + "/status.json"})
	if _, _, ok := waitClass(t, events, 10*time.Second, is(edgesync.Broadband)); !ok {
		t.Fatalf("broadband not detected within 10s; status %+v", m.Status())
	}
	steps := []struct {
		name string
		p    linksim.Profile
		want edgesync.LinkClass
	}{
		{"to slower", linksim.LTE(), edgesync.Mobile},
		{"to faster", linksim.Broadband(), edgesync.Broadband},
		{"to outage", down(linksim.Broadband()), edgesync.Intermittent},
		{"recovery", linksim.Broadband(), edgesync.Broadband},
		{"to satellite", linksim.SatelliteGEO(), edgesync.Satellite},
	}
	for _, s := range steps {
		a.setProfile(t, s.p)
		ev, took, ok := waitClass(t, events, 5*time.Second, is(s.want))
		if !ok {
			t.Fatalf("%s: %v not detected within 5s; status %+v", s.name, s.want, m.Status())
		}
		t.Logf("%s: %v after %v: %s", s.name, s.want, took.Round(time.Millisecond), ev.Change.Reason)
		if ev.Change.Reason == "" || ev.Change.Old == ev.Change.New {
			t.Fatalf("%s: event %+v lacks a reason or a change", s.name, ev.Change)
		}
	}
	if p, _, _ := m.Parameters(); p != m.adj.Parameters(edgesync.Satellite, m.Status().Median.BandwidthBps) {
		t.Fatalf("parameters %v are not satellite's", p)
	}
	if h := m.History(time.Minute); len(h) < 20 || !h[len(h)-1].At.Equal(m.Latest().At) {
		t.Fatalf("history of %d samples, last %v, latest %v", len(h), h[len(h)-1].At, m.Latest().At)
	}

	// Restart: a new monitor on the same state file starts from satellite.
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m2, err := NewMonitor(testConfig(), MonitorOptions{Name: "switch", StatePath: dir + "/status.json"})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if st, p2 := m2.Status(), m2.Snapshot().Params; st.Class != edgesync.Satellite || p2.Mode != edgesync.SyncDeltaZstd {
		t.Fatalf("restarted monitor: class %v, parameters %v; want satellite", st.Class, p2)
	}
}

// TestDetachIsIntermittent: a lost connection (Detach) makes the link
// intermittent within about MinOutage, and a new connection recovers it.
func TestDetachIsIntermittent(t *testing.T) {
	core := newTestCore(t)
	a := dialTestAgent(t, core, linksim.DSL(), 31)
	m, events := startThenAttach(t, testConfig(), a, MonitorOptions{Name: "detach"})
	if _, _, ok := waitClass(t, events, 10*time.Second, is(edgesync.Mobile)); !ok {
		t.Fatalf("dsl not mobile within 10s; status %+v", m.Status())
	}
	m.Detach()
	ev, took, ok := waitClass(t, events, 5*time.Second, is(edgesync.Intermittent))
	if !ok {
		t.Fatalf("not intermittent within 5s of Detach; status %+v", m.Status())
	}
	t.Logf("detached: intermittent after %v: %s", took.Round(time.Millisecond), ev.Change.Reason)
	if _, err := m.Measure(context.Background()); !errors.Is(err, ErrNotAttached) {
		t.Fatalf("Measure while detached: %v, want ErrNotAttached", err)
	}
	b := dialTestAgent(t, core, linksim.DSL(), 32)
	if err := m.Attach(b.conn, b.tr, b.session); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := waitClass(t, events, 5*time.Second, is(edgesync.Mobile)); !ok {
		t.Fatalf("no recovery within 5s of Attach; status %+v", m.Status())
	}
	meas, err := m.Measure(context.Background())
	if err != nil && !errors.Is(err, ErrBudgetExhausted) {
		t.Fatalf("Measure: %v", err)
	}
	if err == nil && (meas.BandwidthBps < 1e6 || meas.BandwidthBps > 4e6) {
		t.Fatalf("Measure on a 2 Mbit/s link: %v", meas)
	}
}

// TestProbeBudget: on an idle satellite link, the monitor's probes (trains
// and pings) stay within 1 % of the configured capacity per minute,
// allowing for a 50 % estimation error.
func TestProbeBudget(t *testing.T) {
	core := newTestCore(t)
	p := linksim.SatelliteGEO()
	a := dialTestAgent(t, core, p, 41)
	m := startMonitor(t, testConfig(), a, MonitorOptions{Name: "budget"})
	waitEstimates(t, m, 2, 20*time.Second)
	st := m.Stats()
	spent := st.TrainBytes + st.PingBytes
	limit := int64(SatelliteBudgetFraction * 1.5 * float64(p.Down.RateBps) / 8 * time.Minute.Seconds())
	t.Logf("probes %+v: %d bytes, limit %d (1%% of %s per minute, +50%%)", st, spent, limit, FormatBps(float64(p.Down.RateBps)))
	if spent > limit {
		t.Fatalf("probes spent %d bytes in under a minute, budget %d", spent, limit)
	}
	if got := core.resp.Stats(); got.Reports < uint64(st.Trains)-1 || got.Forged != 0 {
		t.Fatalf("responder %+v for %d trains", got, st.Trains)
	}
}

// TestStopRestartKeepLinkState: a stopped monitor keeps its class, takes
// pins and overrides and publishes them at once; Restart with new settings
// measures again and keeps the class, the pin and the overrides; bad
// settings and bad overrides change nothing.
func TestStopRestartKeepLinkState(t *testing.T) {
	core := newTestCore(t)
	a := dialTestAgent(t, core, linksim.DSL(), 51)
	m := startMonitor(t, testConfig(), a, MonitorOptions{Name: "restart", StatePath: t.TempDir() + "/status.json"})
	events, cancel := m.Subscribe()
	defer cancel()
	if _, _, ok := waitClass(t, events, 10*time.Second, is(edgesync.Mobile)); !ok {
		t.Fatalf("dsl not mobile within 10s; status %+v", m.Status())
	}
	if err := m.Stop(); err != nil || m.Measuring() {
		t.Fatalf("Stop: %v; measuring %v", err, m.Measuring())
	}
	if err := m.Stop(); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("second Stop: %v, want ErrNotRunning", err)
	}
	before := m.Snapshot()
	if before.Class != edgesync.Mobile || before.Status.Class != edgesync.Mobile || before.Params.Mode != edgesync.SyncDelta {
		t.Fatalf("stopped monitor: %+v, want mobile with its parameters", before)
	}

	sat := edgesync.Satellite
	if err := m.SetPin(Pin{Class: &sat}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-before.Changed:
	default:
		t.Fatal("a pin on a stopped monitor did not signal the change")
	}
	iv := 7 * time.Second
	if err := m.SetProfile(sat, Override{Interval: &iv}); err != nil {
		t.Fatal(err)
	}
	pinned := m.Snapshot()
	if pinned.Class != sat || pinned.Status.Class != edgesync.Mobile || pinned.Params.Interval != iv ||
		pinned.Params.Mode != edgesync.SyncDeltaZstd || pinned.Gen != before.Gen+2 || pinned.Reason != "operator pin: class=satellite" {
		t.Fatalf("after pin and override while stopped: %+v", pinned)
	}
	if p, gen, _ := m.Parameters(); p != pinned.Params || gen != pinned.Gen {
		t.Fatalf("Parameters %v (gen %d), Snapshot %v (gen %d)", p, gen, pinned.Params, pinned.Gen)
	}
	bad := -time.Second
	if err := m.SetProfile(sat, Override{Interval: &bad}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("bad override: %v, want ErrInvalidConfig", err)
	}
	cfg := testConfig()
	cfg.SampleInterval = 2 * cfg.ProbeInterval
	if err := m.Restart(cfg); !errors.Is(err, ErrInvalidConfig) || m.Measuring() {
		t.Fatalf("Restart with a bad config: %v; measuring %v", err, m.Measuring())
	}
	if got := m.Snapshot(); got.Params != pinned.Params || got.Gen != pinned.Gen {
		t.Fatalf("refused changes changed the state: %+v", got)
	}

	cfg = testConfig()
	cfg.SampleInterval = 100 * time.Millisecond
	estimates := m.Stats().Estimates
	if err := m.Restart(cfg); err != nil || !m.Measuring() {
		t.Fatalf("Restart: %v; measuring %v", err, m.Measuring())
	}
	waitEstimates(t, m, estimates+1, 10*time.Second)
	after := m.Snapshot()
	if after.Status.Class != edgesync.Mobile || after.Class != sat || after.Pin.String() != "class=satellite" || after.Params.Interval != iv {
		t.Fatalf("after Restart: %+v, want the measured class, the pin and the override kept", after)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Restart(testConfig()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Restart after Close: %v, want ErrClosed", err)
	}
	if got := m.Snapshot(); got.Class != sat || got.Status.Class != edgesync.Mobile {
		t.Fatalf("closed monitor: %+v", got)
	}
}
