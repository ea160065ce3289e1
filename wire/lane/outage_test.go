package lane

import (
	"context"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// TestTransferResumesAfterOutage cuts the link for two seconds in the
// middle of a transfer, as the demo's outage step does: every packet in
// flight is lost and no acknowledgement comes. Once the link is back the
// transfer must finish at about the link's rate, not at the packet a
// second the pacing floor allows.
func TestTransferResumesAfterOutage(t *testing.T) {
	prof := testLink{name: "ten", rateBps: 10e6, rtt: 40 * time.Millisecond}.profile()
	p := newPair(t, prof, nil)
	col := newCollector()
	cs, _ := p.sessions(t, Config{}, Config{Deliver: col.deliver})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := randomBytes(t, 2<<20)
	done := make(chan error, 1)
	go func() { done <- cs.Send(ctx, opID(1), 0, data, 0) }()
	testutil.WaitFor(t, 20*time.Second, "a quarter of the transfer delivered", func() bool { return col.total() >= int64(len(data)/4) })
	if err := p.relay.SetProfile(linksim.Outage()); err != nil {
		t.Fatal(err)
	}
	// The outage's length is the behaviour under test, not a wait for an event.
	time.Sleep(2 * time.Second)
	if err := p.relay.SetProfile(prof); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	// The rest takes about 1.3 s at 10 Mbit/s; a lane that paces at its
	// floor after the outage would take many minutes.
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("transfer not finished 20 s after the link came back: %d of %d bytes delivered; stats %+v", col.total(), len(data), cs.Stats())
	}
	t.Logf("finished %v after the link came back; stats %+v", time.Since(back).Round(time.Millisecond), cs.Stats())
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
	p := newPair(t, fast, nil)
	col := newCollector()
	cs, _ := p.sessions(t, Config{}, Config{Deliver: col.deliver})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := randomBytes(t, 1<<20)
	done := make(chan error, 1)
	go func() { done <- cs.Send(ctx, opID(1), 0, data, 0) }()
	testutil.WaitFor(t, 20*time.Second, "some of the transfer delivered", func() bool { return col.total() >= 64<<10 })
	// First an outage, as in the demo: what is in flight is lost, and the
	// lane sends it again into the void.
	if err := p.relay.SetProfile(linksim.Outage()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // the outage's length is the behaviour under test
	if err := p.relay.SetProfile(linksim.SatelliteGEO()); err != nil {
		t.Fatal(err)
	}
	moved := time.Now()
	// The rest takes about 4 s at the satellite's 2 Mbit/s uplink plus a
	// few 600 ms round trips.
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("transfer not finished 30 s after the link became a satellite link: %d of %d bytes delivered; stats %+v", col.total(), len(data), cs.Stats())
	}
	st := cs.Stats()
	t.Logf("finished %v after the move; stats %+v", time.Since(moved).Round(time.Millisecond), st)
	if st.SmoothedRTT < 300*time.Millisecond {
		t.Errorf("smoothed RTT %v after a transfer on a 600 ms link: the lane did not learn the new RTT", st.SmoothedRTT)
	}
}
