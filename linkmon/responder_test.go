package linkmon

import (
	"net"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/wire"
)

// TestResponderDropsForged: packets under a wrong key, of an unknown
// session, truncated or replayed are dropped and counted; an authentic
// train is reported once.
func TestResponderDropsForged(t *testing.T) {
	core := newTestCore(t)
	a := dialTestAgent(t, core, linksim.Unshaped(), 51)
	p, err := NewProber(a.conn, a.tr, a.session)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	from := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	train := &wire.ProbeTrain{TrainID: 1 << 40, Count: 2}
	if err := train.PadTo(100); err != nil {
		t.Fatal(err)
	}
	wrong := wire.ProbeKey{Session: a.session}
	forged, err := wire.SealProbe(wrong, train)
	if err != nil {
		t.Fatal(err)
	}
	other := wire.ProbeKey{Session: a.session + 1000}
	unknown, err := wire.SealProbe(other, train)
	if err != nil {
		t.Fatal(err)
	}
	core.resp.HandleRawPacket(forged, from)
	core.resp.HandleRawPacket(unknown, from)
	core.resp.HandleRawPacket(forged[:10], from)
	core.resp.HandleRawPacket([]byte{wire.ProbeMagic}, from)
	if st := core.resp.Stats(); st.Forged != 4 || st.Packets != 0 {
		t.Fatalf("after 4 forged packets: %+v", st)
	}

	// An authentic train, then its packets replayed.
	ctx, cancel := contextWithTimeout(5 * time.Second)
	defer cancel()
	res, err := p.Train(ctx, 8)
	if err != nil || res.Received != 8 {
		t.Fatalf("train: %+v, %v", res, err)
	}
	key, err := ProbeKeyFor(a.conn, a.session) // the agent's side derives the same key
	if err != nil {
		t.Fatal(err)
	}
	replay := &wire.ProbeTrain{TrainID: 1, Index: 0, Count: 8}
	b, err := wire.SealProbe(key, replay)
	if err != nil {
		t.Fatal(err)
	}
	core.resp.HandleRawPacket(b, from)
	st := core.resp.Stats()
	if st.Packets != 8 || st.Dropped != 1 || st.Forged != 4 {
		t.Fatalf("after a train of 8 and one replay: %+v", st)
	}
}

// TestSubscriberDropsOldest: a subscriber that does not read keeps the
// newest events and the monitor never blocks.
func TestSubscriberDropsOldest(t *testing.T) {
	m, err := NewMonitor(testConfig(), MonitorOptions{Name: "subs"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	events, cancel := m.Subscribe()
	defer cancel()
	classes := []string{"fiber", "satellite", "mobile"}
	for i := range 40 {
		pin, err := ParsePin(classes[i%3])
		if err != nil {
			t.Fatal(err)
		}
		if err := m.SetPin(pin); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(events); n != subscriberBuffer {
		t.Fatalf("%d events queued, want %d", n, subscriberBuffer)
	}
	var last Event
	for range subscriberBuffer {
		last = <-events
	}
	if last.Kind != ParametersChanged || last.Class.String() != classes[39%3] {
		t.Fatalf("newest queued event %+v, want the last pin's class %s", last, classes[39%3])
	}
}
