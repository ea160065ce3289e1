package linkmon

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// ackedOnly passes acknowledgements to a meter and drops the sender's
// app-limited marks: a sender held below the link by its own rate model,
// which does not know it is (the data lane in probe_bw cruising at a rate
// it estimated low).
type ackedOnly struct{ m *DeliveryMeter }

func (a ackedOnly) OnAcked(n int) { a.m.OnAcked(n) }
func (a ackedOnly) OnAppLimited() {}

// TestSatelliteFigureAfterTransfer (docs/linkmon.md, "A transfer's rate is
// not the link's"): on a satellite-geo link (2 Mbit/s up, 600 ms RTT) a
// transfer whose sender runs at 1.7 Mbit/s, 15 % below the link and within
// the 20 % a link-filling delivery rate may be below the capacity, sets the
// capacity to the sender's rate; then the transfer ends and the link goes
// quiet. The demo showed such a figure (1.64 Mbit/s on the 2 Mbit/s uplink)
// for the rest of its satellite step: on satellite no check trains run, the
// budget spaces probes 7-14 s apart, and a link that went idle first probes
// every 10 min. idle_after is 1 s here so that the link is idle before the
// next probe is due, as in the demo's worst case. The bandwidth status
// shows from 6 s after the transfer must be the link's within 10 % (the
// probes' own spread on this link is 2-6 %).
func TestSatelliteFigureAfterTransfer(t *testing.T) {
	core := newTestCore(t)
	p := linksim.SatelliteGEO()
	a := dialTestAgent(t, core, uplink(p), 71) // the agent's uplink: 2 Mbit/s
	cfg := testConfig()
	cfg.IdleAfter = time.Second
	m, events := startThenAttach(t, cfg, a, MonitorOptions{Name: "sat"})
	if _, _, ok := waitClass(t, events, 15*time.Second, is(edgesync.Satellite)); !ok {
		t.Fatalf("not satellite within 15s; status %+v", m.Status())
	}
	waitEstimates(t, m, 1, 15*time.Second)
	truth := float64(p.Up.RateBps)
	m.Busy()
	b := startBulk(t, a, ackedOnly{m.DeliveryMeter()}, 0.85*truth)
	if !testutil.Poll(15*time.Second, func() bool { return m.Stats().Delivered >= 6 }) {
		t.Fatalf("the sender's delivery rate not taken as the link's within 15s; stats %+v", m.Stats())
	}
	during, _ := m.Capacity()
	b.stop()
	t.Logf("capacity at the transfer's end %s (the sender's rate); stats %+v", FormatBps(during), m.Stats())
	var worst float64
	var trace []string
	for i := range 12 {
		time.Sleep(time.Second) // one status reading a second, as BenchmarkEstimateLoaded
		bw := m.Status().Median.BandwidthBps
		c, _ := m.Capacity()
		trace = append(trace, FormatBps(bw)+" (capacity "+FormatBps(c)+", probes "+strconv.Itoa(m.Stats().Probes)+", idle "+strconv.FormatBool(m.Idle())+")")
		if i >= 5 {
			worst = max(worst, math.Abs(bw-truth)/truth)
		}
	}
	t.Logf("status bandwidth each second after the transfer: %s; stats %+v", strings.Join(trace, ", "), m.Stats())
	if worst > 0.10 {
		t.Fatalf("bandwidth from 6 s after the transfer off by %.1f %% of the 2 Mbit/s uplink at worst (want ≤ 10 %%): %s", worst*100, strings.Join(trace, ", "))
	}
}
