package linkmon

import (
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
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
			m, err := NewMonitor(testConfig(), MonitorOptions{Name: tc.profile.Name})
			if err != nil {
				t.Fatal(err)
			}
			events, cancel := m.Subscribe()
			defer cancel()
			if err := m.Attach(a.conn, a.tr, a.session); err != nil {
				t.Fatal(err)
			}
			m.Start()
			defer m.Close()
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
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for m.Stats().Estimates < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d bandwidth estimates within %v, want %d; stats %+v", m.Stats().Estimates, limit, n, m.Stats())
		}
		<-tick.C
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
	m, err := NewMonitor(testConfig(), MonitorOptions{Name: "intermittent"})
	if err != nil {
		t.Fatal(err)
	}
	events, cancel := m.Subscribe()
	defer cancel()
	if err := m.Attach(a.conn, a.tr, a.session); err != nil {
		t.Fatal(err)
	}
	m.Start()
	defer m.Close()
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
