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
