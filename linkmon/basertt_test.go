package linkmon

import (
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

const ms = time.Millisecond

func TestBaseRTT(t *testing.T) {
	var b baseRTT
	t0 := time.Unix(1000, 0)
	b.add(t0, 65*ms) // one ping across a path change: no base alone
	if got := b.min(); got != 65*ms {
		t.Fatalf("base %v of one sample, want it", got)
	}
	for i, r := range []time.Duration{110 * ms, 40 * ms, 41 * ms, 63 * ms, 92 * ms} {
		b.add(t0.Add(time.Duration(i+1)*250*ms), r)
	}
	if got := b.min(); got != 41*ms {
		t.Fatalf("base %v, want the second-lowest, 41ms", got)
	}
	// The lowest ones age out after baseRTTWindow.
	b.add(t0.Add(baseRTTWindow+800*ms), 70*ms)
	if got := b.min(); got != 70*ms {
		t.Fatalf("base %v after the 40 and 41 ms samples' window, want 70ms (63 and 70)", got)
	}
	// Bounded whatever the rate.
	for i := range 3 * maxBaseRTTSamples {
		b.add(t0.Add(20*time.Second+time.Duration(i)*time.Microsecond), 50*ms)
	}
	if len(b.s) > maxBaseRTTSamples {
		t.Fatalf("%d samples kept, want at most %d", len(b.s), maxBaseRTTSamples)
	}
}

// A rise of the path's RTT beyond what our own queue adds (pathJump ×
// the base) for pathJumpFor starts the base afresh; our own queue's 2.3×,
// or a start-up overshoot of a second, does not.
func TestBaseRTTNewPath(t *testing.T) {
	var b baseRTT
	t0 := time.Unix(1000, 0)
	i := 0
	add := func(r time.Duration) bool {
		i++
		at := t0.Add(time.Duration(i) * 250 * ms)
		b.add(at, r)
		return b.newPath(at)
	}
	for _, r := range []time.Duration{40 * ms, 40 * ms, 41 * ms, 92 * ms, 92 * ms, 92 * ms, 190 * ms, 190 * ms, 190 * ms, 190 * ms, 50 * ms, 92 * ms} {
		if add(r) {
			t.Fatalf("our own queue (%v on a 40ms base) read as a new path", r)
		}
	}
	if b.min() != 40*ms {
		t.Fatalf("base %v, want 40ms", b.min())
	}
	changed := -1
	for k := range 12 {
		r := 600*ms + time.Duration(k)*ms
		if k == 0 {
			r = 300 * ms // the ping that crossed the change
		}
		if add(r) {
			changed = k
			break
		}
	}
	if changed < 7 || changed > 9 {
		t.Fatalf("600 ms on a 40 ms base read as a new path after %d pings, want after about 2 s (8-10 pings of 250 ms)", changed+1)
	}
	if got := b.min(); got < 600*ms {
		t.Fatalf("base %v after the new path, want 600 ms or more (the 300 ms ping that crossed the change is no base alone)", got)
	}
}

func TestQueuedAndSenderLimited(t *testing.T) {
	for _, c := range []struct {
		name         string
		rtts         []time.Duration
		base, jitter time.Duration
		want         bool
	}{
		{"no base yet", []time.Duration{50 * ms}, 0, 0, true},
		{"at the base", []time.Duration{40 * ms, 41 * ms, 42 * ms}, 40 * ms, ms, false},
		{"a queue", []time.Duration{60 * ms, 63 * ms, 70 * ms}, 40 * ms, ms, true},
		{"one late pong", []time.Duration{41 * ms, 90 * ms, 42 * ms}, 40 * ms, ms, false},
		{"LTE's jitter is no queue", []time.Duration{114 * ms, 120 * ms, 108 * ms}, 100 * ms, 10 * ms, false},
		{"a queue on LTE", []time.Duration{136 * ms, 150 * ms, 178 * ms}, 100 * ms, 10 * ms, true},
		{"a path that changed is no queue", []time.Duration{110 * ms, 112 * ms, 111 * ms}, 10 * ms, ms, false},
	} {
		if got := queued(c.rtts, c.base, c.jitter); got != c.want {
			t.Errorf("%s: queued %t, want %t", c.name, got, c.want)
		}
	}
	if !senderLimited(5e6, 10e6, false) {
		t.Error("5 Mbit/s on a 10 Mbit/s link without a queue: want a lower bound")
	}
	if senderLimited(5e6, 10e6, true) {
		t.Error("5 Mbit/s with a queue: the link's rate (it dropped), not a lower bound")
	}
	if senderLimited(9e6, 10e6, false) {
		t.Error("9 Mbit/s on a 10 Mbit/s estimate: within the margin, the link's")
	}
	if senderLimited(5e6, 0, false) {
		t.Error("no capacity estimate yet: the rate is the link's")
	}
}

// While the agent's own traffic fills the link the class judges the
// path's base RTT, but a path whose RTT truly rises under that traffic is
// still seen: 20 ms to 600 ms (satellite) and 20 ms to 140 ms (mobile)
// at the same rate, within pathJumpFor and the classifier's samples.
func TestPathRTTRiseSeenUnderLoad(t *testing.T) {
	for _, c := range []struct {
		name  string
		delay time.Duration // each way
		want  edgesync.LinkClass
	}{
		{"satellite", 300 * ms, edgesync.Satellite},
		{"mobile", 70 * ms, edgesync.Mobile},
	} {
		t.Run(c.name, func(t *testing.T) {
			core := newTestCore(t)
			a := dialTestAgent(t, core, filledLink(40e6), 63)
			m, events := startThenAttach(t, testConfig(), a, MonitorOptions{Name: "rise"})
			if _, _, ok := waitClass(t, events, 15*time.Second, is(edgesync.Broadband)); !ok {
				t.Fatalf("not broadband within 15s; status %+v", m.Status())
			}
			b := startBulk(t, a, m.DeliveryMeter(), 0)
			defer b.stop()
			if !testutil.Poll(10*time.Second, func() bool { return m.Stats().Delivered >= 8 }) {
				t.Fatalf("no link-filling delivery rate within 10s; stats %+v", m.Stats())
			}
			if st := m.Status(); st.Class != edgesync.Broadband {
				t.Fatalf("class %v under the bulk sender's own queue on a 20 ms link (median RTT %v), want broadband", st.Class, st.Median.RTT)
			}
			for len(events) > 0 {
				<-events
			}
			p := filledLink(40e6)
			p.Up.Delay, p.Down.Delay = c.delay, c.delay
			a.setProfile(t, p)
			ev, took, ok := waitClass(t, events, 8*time.Second, is(c.want))
			if !ok {
				t.Fatalf("RTT rise from 20 ms to %v under load not seen as %v within 8s; status %+v", 2*c.delay, c.want, m.Status())
			}
			t.Logf("20 ms -> %v under load: %v after %v: %s", 2*c.delay, ev.Change.New, took.Round(time.Millisecond), ev.Change.Reason)
		})
	}
}
