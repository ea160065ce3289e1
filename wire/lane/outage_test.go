package lane

import (
	"context"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// outage is a transfer that a two-second outage interrupts, as the demo's
// outage step does: every packet in flight is lost and no acknowledgement
// comes.
type outage struct {
	before, after linksim.Profile // the link before and after the outage
	afterName     string          // how messages name the link after it
	size          int             // the transfer's bytes
	cutAt         int64           // bytes delivered when the link is cut
	within        time.Duration   // the bound on the rest once the link is back
}

// run sends o.size bytes, cuts the link once o.cutAt are delivered, gives
// it back as o.after two seconds later and fails unless the transfer
// finishes within o.within of that. It returns the sender's statistics.
func (o outage) run(t *testing.T) Stats {
	t.Helper()
	p := newPair(t, o.before, nil)
	col := newCollector()
	cs, _ := p.sessions(t, Config{}, Config{Deliver: col.deliver})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := randomBytes(t, o.size)
	done := make(chan error, 1)
	go func() { done <- cs.Send(ctx, opID(1), 0, data, 0) }()
	testutil.WaitFor(t, 20*time.Second, "the bytes before the cut delivered", func() bool { return col.total() >= o.cutAt })
	if err := p.relay.SetProfile(linksim.Outage()); err != nil {
		t.Fatal(err)
	}
	// The outage's length is the behaviour under test, not a wait for an event.
	time.Sleep(2 * time.Second)
	if err := p.relay.SetProfile(o.after); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(o.within):
		t.Fatalf("transfer not finished %v after the link became %s: %d of %d bytes delivered; stats %+v", o.within, o.afterName, col.total(), len(data), cs.Stats())
	}
	st := cs.Stats()
	t.Logf("finished %v after the link became %s; stats %+v", time.Since(back).Round(time.Millisecond), o.afterName, st)
	return st
}

// TestTransferResumesAfterOutage cuts the link for two seconds in the
// middle of a transfer. Once the link is back the transfer must finish at
// about the link's rate, not at the packet a second the pacing floor
// allows.
func TestTransferResumesAfterOutage(t *testing.T) {
	prof := testLink{name: "ten", rateBps: 10e6, rtt: 40 * time.Millisecond}.profile()
	// The link is cut once a quarter is delivered. The rest takes about
	// 1.3 s at 10 Mbit/s; a lane that paces at its floor after the outage
	// would take many minutes.
	outage{before: prof, after: prof, afterName: "the same link again",
		size: 2 << 20, cutAt: 512 << 10, within: 20 * time.Second}.run(t)
}

// TestTransferFollowsAnRTTJump moves a transfer in flight from a 20 ms
// link, through a 2 s outage, to a 600 ms satellite link, as the demo's
// walk does. The lane's RTT
// estimate is then far too short: packets are declared lost long before
// their acknowledgements can come. Those late acknowledgements must still
// count (and teach the lane the new RTT); they were dropped with the
// packets' records, so the lane sent the same data again for ever.
func TestTransferFollowsAnRTTJump(t *testing.T) {
	fast := testLink{name: "fast", rateBps: 20e6, rtt: 20 * time.Millisecond}.profile()
	// The rest takes about 4 s at the satellite's 2 Mbit/s uplink plus a
	// few 600 ms round trips.
	st := outage{before: fast, after: linksim.SatelliteGEO(), afterName: "a satellite link",
		size: 1 << 20, cutAt: 64 << 10, within: 30 * time.Second}.run(t)
	if st.SmoothedRTT < 300*time.Millisecond {
		t.Errorf("smoothed RTT %v after a transfer on a 600 ms link: the lane did not learn the new RTT", st.SmoothedRTT)
	}
}
