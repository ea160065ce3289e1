package agent

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestStatusIsWhatTheSenderUses: the class and parameters the operator
// sees (transport.bandwidth.status, transport.config) are the ones the
// sender reads, and pins and overrides change both at once (no wait) and
// the same way: on every endpoint, while the monitor is stopped, and
// across a monitor.start with new settings.
func TestStatusIsWhatTheSenderUses(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c1, c2 := coretest.Start(t, p, nil), coretest.Start(t, p, nil)
	cfg := coretest.AgentConfig(t, p, c1.Addr.String())
	cfg.Endpoints = append(cfg.Endpoints, config.Endpoint{Name: "backup", Address: c2.Addr.String(), ServerName: "127.0.0.1", Monitor: cfg.Monitor})
	a := startAgent(t, p, cfg, Options{})
	for _, n := range []string{"core", "backup"} {
		testutil.WaitFor(t, 15*time.Second, n+"'s link classified", func() bool {
			st, err := a.Status(n)
			return err == nil && st.Measured != edgesync.Unknown
		})
	}

	// view reads what the operator sees and what the sender uses of one
	// endpoint, and fails unless they agree. Measurements move chunk size
	// and concurrency with the bandwidth, so a pair counts only when the
	// sender's generation held across the status read.
	view := func(name string) (LinkStatus, uint64, <-chan struct{}) {
		t.Helper()
		e, err := a.endpoint(name)
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			p, gen, changed := e.params()
			st, err := a.Status(name)
			if err != nil {
				t.Fatal(err)
			}
			if _, again, _ := e.params(); again != gen {
				continue
			}
			if st.Params != p {
				t.Fatalf("%s: status shows class %v with %v; the sender uses %v", name, st.Class, st.Params, p)
			}
			return st, gen, changed
		}
		t.Fatalf("%s: the parameters changed during each of 100 reads", name)
		return LinkStatus{}, 0, nil
	}
	signalled := func(what string, ch <-chan struct{}) {
		t.Helper()
		select {
		case <-ch:
		default:
			t.Fatalf("%s: the sender was not told of the change", what)
		}
	}

	sat, full := edgesync.Satellite, edgesync.SyncFull
	_, gen, changed := view("core")
	if err := a.Switch("core", linkmon.Pin{Class: &sat}); err != nil {
		t.Fatal(err)
	}
	st, gen2, _ := view("core")
	signalled("pin satellite", changed)
	if st.Class != sat || st.Pin != "class=satellite" || st.Params.Mode != edgesync.SyncDeltaZstd || !st.Params.SummaryOnly || gen2 <= gen {
		t.Fatalf("after pinning satellite: %+v (generation %d, was %d)", st, gen2, gen)
	}

	// An override of satellite reaches the pinned endpoint at once, and
	// the other endpoint as soon as it is satellite too.
	iv := 7 * time.Second
	_, _, changed = view("core")
	if err := a.SetProfile(sat, linkmon.Override{Interval: &iv}); err != nil {
		t.Fatal(err)
	}
	signalled("override", changed)
	if st, _, _ := view("core"); st.Params.Interval != iv {
		t.Fatalf("core after the override: %+v", st)
	}
	if err := a.Switch("backup", linkmon.Pin{Class: &sat}); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := view("backup"); st.Class != sat || st.Params.Interval != iv {
		t.Fatalf("backup pinned satellite after the override: %+v", st)
	}

	// monitor.stop keeps the pin and the override; a pin while stopped
	// changes both sides at once.
	if _, err := a.StopMonitor("core"); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := view("core"); st.Class != sat || st.Params.Interval != iv {
		t.Fatalf("after monitor.stop: %+v", st)
	}
	_, _, changed = view("core")
	if err := a.Switch("core", linkmon.Pin{Class: &sat, Mode: &full}); err != nil {
		t.Fatal(err)
	}
	signalled("pin while stopped", changed)
	want, _, _ := view("core")
	if want.Class != sat || want.Params.Mode != full || want.Params.Compression || want.Params.Interval != iv {
		t.Fatalf("pinned satellite and full while stopped: %+v", want)
	}

	// monitor.start with new settings keeps them too.
	if _, err := a.StartMonitor(context.Background(), MonitorStart{Endpoint: "core", Monitor: MonitorChanges{SampleInterval: 500 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := view("core"); st.Class != sat || st.Pin != want.Pin || st.Params.Mode != full || st.Params.Interval != iv {
		t.Fatalf("after monitor.start: %+v, want the pin and the override of before", st)
	}

	// Back to auto: both sides take the measured class at once.
	if err := a.Switch("core", linkmon.Pin{}); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := view("core"); st.Pin != "auto" || st.Class != st.Measured {
		t.Fatalf("after auto: class %v, measured %v, pin %s", st.Class, st.Measured, st.Pin)
	}

	// transport.config shows what the senders use.
	for _, n := range []string{"core", "backup"} {
		for i := 0; ; i++ {
			before, gen, _ := view(n)
			rc := a.Config()
			if _, again, _ := view(n); again != gen {
				if i == 100 {
					t.Fatalf("%s: the parameters changed during each of 100 reads", n)
				}
				continue
			}
			if rc.Classes[n] != before.Class || rc.Params[n] != before.Params || rc.Pins[n] != before.Pin {
				t.Fatalf("%s: config shows %v %v %s; status %v %v %s", n, rc.Classes[n], rc.Params[n], rc.Pins[n], before.Class, before.Params, before.Pin)
			}
			break
		}
	}
}

// TestStatusClassIsTheSendersAcrossAWalk (docs/linkmon.md, "Who owns the
// link state"): while the link walks lte → satellite-geo → lte and the
// class follows it, every status read whose parameters' generation held
// shows the sender's parameters, and they are the parameters of the class
// it shows (its profile's mode, compression and interval), never another
// class's.
func TestStatusClassIsTheSendersAcrossAWalk(t *testing.T) {
	_, a, conn := shapedAgent(t, linksim.LTE())
	e, err := a.endpoint("core")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[edgesync.LinkClass]int{}
	// check reads status and the sender's parameters once and fails if
	// they disagree; it reports the class shown.
	check := func() edgesync.LinkClass {
		t.Helper()
		for range 100 {
			sp, gen, _ := e.params()
			st := mustStatus(t, a)
			if _, again, _ := e.params(); again != gen {
				continue
			}
			if st.Params != sp {
				t.Fatalf("status shows class %v with %+v; the sender uses %+v", st.Class, st.Params, sp)
			}
			want := a.Config().Profiles[st.Class].Params
			if sp.Mode != want.Mode || sp.Compression != want.Compression || sp.Interval != want.Interval {
				t.Fatalf("status shows class %v; the sender's parameters %+v are not that class's %+v", st.Class, sp, want)
			}
			seen[st.Class]++
			return st.Class
		}
		t.Fatal("the parameters changed during each of 100 reads")
		return 0
	}
	walk := []struct {
		profile linksim.Profile
		class   edgesync.LinkClass
	}{{linksim.LTE(), edgesync.Mobile}, {linksim.SatelliteGEO(), edgesync.Satellite}, {linksim.LTE(), edgesync.Mobile}}
	for i, st := range walk {
		if i > 0 { // the first is the socket's profile from the start
			if err := conn().SetProfile(st.profile); err != nil {
				t.Fatal(err)
			}
		}
		testutil.WaitFor(t, 20*time.Second, "class "+st.class.String()+" on "+st.profile.Name, func() bool { return check() == st.class })
	}
	if seen[edgesync.Mobile] == 0 || seen[edgesync.Satellite] == 0 {
		t.Fatalf("classes seen %v: the walk did not move the class", seen)
	}
}

// ownQueueLink is goodput row 3's 50 Mbit/s, 1 % link (docs/linksim.md,
// "The goodput rows") at a 30 ms path instead of 40, with a buffer deep
// enough (100 ms) for the agent's own data to queue in. The path sits
// where the machine cannot move the class, so that what the test sees is
// the agent's queue: 20 ms under broadband's 50 ms, 30 under the 60 ms
// that leave it, and under the 40 ms that come back to it. A loaded
// 2-core machine's scheduling adds up to 150 ms to single pings of an
// in-process link and 5-28 ms to their median: on the 40 ms path, 6 of
// 10 runs beside two busy loops (load average 14-17) lost broadband
// before the transfer, 4 of them while the link was idle, and a 40 ms
// path never comes back (docs/linkmon.md, "A figure settled inside the
// margin").
func ownQueueLink() linksim.Profile {
	d := linksim.Direction{RateBps: 50_000_000, Delay: 15 * time.Millisecond, LossRate: 0.01, QueueDelay: 100 * time.Millisecond}
	return linksim.Profile{Name: "50M-30ms-1pct", Summary: "goodput row 3 at a 30 ms path, with a 100 ms buffer", Up: d, Down: d}
}

// A 50 Mbit/s, 40 ms, 1 % link showed as mobile under a bulk transfer (by
// the thresholds, 10-100 Mbit/s under 50 ms is broadband; docs/linkmon.md,
// "Under the agent's own load"). The agent's own data queues at the
// bottleneck (up to 100 ms here) and the RTT the class was judged on rose
// past 50 ms. The class must judge the path, not the queue its own sender
// builds: no sample of the transfer leaves broadband for its RTT, and the
// RTT shown stays under broadband's 50 ms (ownQueueLink says why the
// path is 30 ms).
func TestOwnQueueKeepsBroadband(t *testing.T) {
	if testing.Short() {
		t.Skip("a bulk transfer of 10-20 s on a shaped link")
	}
	c, a, link := shapedAgent(t, ownQueueLink())
	testutil.WaitFor(t, 30*time.Second, "the idle link classed broadband", func() bool {
		st, err := a.Status("core")
		return err == nil && link() != nil && st.Measured == edgesync.Broadband
	})

	op := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "bulk", Priority: edgesync.High, Kind: edgesync.EventOp,
		Payload: bytes.NewReader(randomish(48 << 20))})
	testutil.WaitFor(t, 30*time.Second, "the bulk transfer under way", func() bool {
		n, ok := c.Store.PartialSize("site-1", op.ID)
		return ok && n > 1<<20
	})
	// Watch the class while the transfer fills the link (up to 20 s). The
	// RTT it is judged on must stay the path's; a class lost to the
	// bandwidth instead (a CPU-starved sender under -race, a probe read
	// behind the traffic) is another matter and only logged.
	var rtts []time.Duration
	var byRTT, other []string
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for range 80 {
		<-tick.C
		if n, ok := c.Store.PartialSize("site-1", op.ID); !ok || n > 46<<20 {
			break // done, or nearly: the link is no longer full
		}
		st := mustStatus(t, a)
		rtts = append(rtts, st.Figures.RTT)
		if st.Measured == edgesync.Broadband {
			continue
		}
		why := fmt.Sprintf("%v (RTT %v)", st.Measured, st.Figures.RTT)
		if st.LastChange != nil {
			why = fmt.Sprintf("%v: %s", st.Measured, st.LastChange.Reason)
		}
		if st.Figures.RTT >= 50*time.Millisecond || st.LastChange != nil && strings.Contains(st.LastChange.Reason, "RTT") {
			byRTT = append(byRTT, why)
		} else {
			other = append(other, why)
		}
	}
	if len(rtts) < 8 {
		t.Fatalf("only %d samples while the link was full", len(rtts))
	}
	slices.Sort(rtts)
	t.Logf("%d samples under load: %d not broadband by the RTT, %d by another figure %v; RTT shown p50 %v, max %v",
		len(rtts), len(byRTT), len(other), slices.Compact(other), rtts[len(rtts)/2], rtts[len(rtts)-1])
	if len(byRTT) > 0 || rtts[len(rtts)-1] >= 50*time.Millisecond {
		t.Fatalf("%d of %d samples under the agent's own load not broadband by the RTT on a 50 Mbit/s, 30 ms link (RTT shown p50 %v, max %v): %v",
			len(byRTT), len(rtts), rtts[len(rtts)/2], rtts[len(rtts)-1], slices.Compact(byRTT))
	}
}
