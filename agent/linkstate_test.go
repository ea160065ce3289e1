package agent

import (
	"context"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
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
