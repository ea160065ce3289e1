package agent

import (
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// TestPackedDrainStatusTrue drains a backlog of small ops (about 7.5 s
// of the uplink's time on lte-like and broadband, 10 s on satellite),
// which go packed on QUIC streams (sendop_pack.go), through linksim
// links, reading the agent's status every 250 ms from a few seconds after
// Start until every op is at the core: from 4 s (5 s on the 600 ms
// path), once the monitor has its samples, the agent's own data has
// begun and the connection's first probe, sent as the drain begins, has
// been followed by the next (on a loaded machine that one read 22 and
// 1841 Mbit/s now and then). The status is what `ctl
// transport.bandwidth.status` and the status page show, and the pack
// budget follows its bandwidth (packbudget.go): at the 90th percentile
// the bandwidth shown must be within 25 % of the uplink's configured rate
// and the RTT within 25 % (or 10 ms) of the path's, and the measured class
// must be the link's at every read.
func TestPackedDrainStatusTrue(t *testing.T) {
	if testing.Short() {
		t.Skip("drains about 10 s of a backlog per link")
	}
	if raceEnabled {
		// Under -race beside CI's other packages the drain is the CPU's,
		// three times slower, and the monitor reads the CPU's stalls: the
		// core's answers bunched, the packs' rate read 2.73 Mbit/s on the
		// 2 Mbit/s satellite link and the pings 17 ms late on lte.
		t.Skip("judges the link's figures under the agent's own load; the race detector's load is the machine's")
	}
	// bwOpen: the bandwidth shown is logged, not judged. On lte a probe
	// whose two wrong trains agree (5-packet warm-up trains read 14-17
	// Mbit/s on the 10 Mbit/s link) stands while the packs hold the next
	// probe: 16 Mbit/s shown for a whole drain in 1 of 5 runs
	// (docs/linkmon.md, "Packed small ops", still open). RTT and class
	// are judged there too.
	cases := []struct {
		dc     drainCase
		from   time.Duration
		bwOpen bool
	}{
		{drainCase{name: "lte-10mbit-60ms", prof: lteLike(), class: edgesync.Mobile, ops: 9000}, 4 * time.Second, true},
		{drainCase{name: "broadband-20mbit-20ms", prof: symmetricLink("20mbit-20ms", 20_000_000, 20*time.Millisecond, 0), class: edgesync.Broadband, ops: 9000, size: 2 << 10}, 4 * time.Second, false},
		{drainCase{name: "satellite-geo-2mbit-600ms", prof: linksim.SatelliteGEO(), class: edgesync.Satellite, ops: 2500}, 5 * time.Second, false},
	}
	for _, c := range cases {
		t.Run(c.dc.name, func(t *testing.T) { checkDrainStatus(t, c.dc, c.from, c.bwOpen) })
	}
}

// checkDrainStatus drains dc's backlog and judges the status read from
// statusFrom after Start until the drain ended (TestPackedDrainStatusTrue).
func checkDrainStatus(t *testing.T, dc drainCase, statusFrom time.Duration, bwOpen bool) {
	r := packedDrain(t, dc, drainPayloads(dc), false)
	bwErrs := bandwidthErrors(r.status, statusFrom, dc.prof.Up.RateBps)
	if len(bwErrs) < 8 {
		t.Fatalf("%d status reads from %v until the drain ended at %v: too few to judge; make the backlog longer", len(bwErrs), statusFrom, r.took)
	}
	path := dc.prof.Up.Delay + dc.prof.Down.Delay
	var shown []string
	var rttErrs []time.Duration
	wrong := 0
	var probedFrom int64 = -1
	for _, s := range r.status {
		if s.at < statusFrom {
			continue
		}
		if probedFrom < 0 {
			probedFrom = s.probed
		}
		shown = append(shown, fmt.Sprintf("%v %s %v", s.measured, formatMbps(s.bps), s.rtt.Round(time.Millisecond)))
		rttErrs = append(rttErrs, max(s.rtt-path, path-s.rtt))
		if s.measured != dc.class {
			wrong++
		}
	}
	probed := r.status[len(r.status)-1].probed - probedFrom
	t.Logf("status from %v until the drain ended at %v (the monitor sent %d probe bytes meanwhile): %v",
		statusFrom, r.took.Round(time.Millisecond), probed, shown)
	if p90 := testutil.Percentile(bwErrs, 0.9); p90 > 25 {
		report := t.Errorf
		if bwOpen {
			report = t.Logf
		}
		report("bandwidth shown during the packed drain is %.1f %% off the link's %s at the p90 (p50 %.1f %%), want within 25 %%",
			p90, formatMbps(float64(dc.prof.Up.RateBps)), testutil.Percentile(bwErrs, 0.5))
	}
	slices.Sort(rttErrs)
	if p90, bound := rttErrs[(len(rttErrs)*9+9)/10-1], max(path/4, 10*time.Millisecond); p90 > bound {
		t.Errorf("RTT shown during the packed drain is %v off the path's %v at the p90 (p50 %v), want within %v",
			p90, path, rttErrs[len(rttErrs)/2], bound)
	}
	if wrong > 0 {
		t.Errorf("measured class not %v in %d of %d status reads during the packed drain", dc.class, wrong, len(bwErrs))
	}
}

// formatMbps renders bps in Mbit/s for a test's message.
func formatMbps(bps float64) string {
	return strconv.FormatFloat(bps/1e6, 'f', 2, 64) + " Mbit/s"
}
