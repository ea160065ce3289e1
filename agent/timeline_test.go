package agent

import (
	"bytes"
	"testing"
	"time"
	"unsafe"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestTimelineRingKeepsTheLastHour: past TimelineLength points the oldest
// go, the rest stay in order, since cuts by time, and the ring holds no
// more than the 96-byte points its bound (timeline.go) counts.
func TestTimelineRingKeepsTheLastHour(t *testing.T) {
	if n := unsafe.Sizeof(timelinePoint{}); n != 96 {
		t.Fatalf("a timeline point is %d bytes; timeline.go and docs/status-page.md say 96", n)
	}
	var r timelineRing
	t0 := time.Unix(1_700_000_000, 0)
	for i := range TimelineLength + 10 {
		r.add(timelinePoint{at: t0.Add(time.Duration(i) * time.Second).UnixNano(), ops: [edgesync.NumPriorities]int32{int32(i)}})
	}
	all := r.since(time.Time{})
	if len(all) != TimelineLength || cap(r.pts) != TimelineLength {
		t.Fatalf("ring holds %d points (capacity %d), want %d", len(all), cap(r.pts), TimelineLength)
	}
	for i, p := range all {
		if want := i + 10; p.QueueOps[0] != want || !p.At.Equal(t0.Add(time.Duration(want)*time.Second)) {
			t.Fatalf("point %d is the %d-th recorded at %v, want the %d-th", i, p.QueueOps[0], p.At, want)
		}
	}
	if got := r.since(t0.Add(time.Duration(TimelineLength+5) * time.Second)); len(got) != 5 {
		t.Fatalf("the last 5 s: %d points", len(got))
	}
}

// TestStatusShowsTransfersAndTimeline: while a large op crawls over a
// 2 Mbit/s link, transport.bandwidth.status lists it with its progress
// and the timeline has it queued; once acknowledged it is gone from both.
func TestStatusShowsTransfersAndTimeline(t *testing.T) {
	a, _ := startSatellite(t, linksim.Profile{Name: "slow", Up: linksim.Direction{RateBps: 2_000_000, Delay: 20 * time.Millisecond}, Down: linksim.Direction{Delay: 20 * time.Millisecond}})
	const size = 2 << 20 // about 8 s at 2 Mbit/s
	op := enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: "bulk", Priority: edgesync.Critical, Payload: bytes.NewReader(testutil.RandomBytes(3, size))})
	var tr Transfer
	testutil.WaitFor(t, 30*time.Second, "the op in flight, part of it sent", func() bool {
		st, err := a.Status("core")
		if err != nil || len(st.Transfers) != 1 {
			return false
		}
		tr = st.Transfers[0]
		return tr.Sent > 0 && tr.Sent < tr.Size
	})
	if tr.ID != op.ID || tr.Key != "bulk" || tr.Priority != edgesync.Critical || tr.Size != size || time.Since(tr.Started) > time.Minute {
		t.Fatalf("transfer in flight: %+v", tr)
	}
	testutil.WaitFor(t, 5*time.Second, "a timeline point with the op queued on the satellite class", func() bool {
		tl, err := a.Timeline("core", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range tl.Points {
			if p.QueueOps[edgesync.Critical] == 1 && p.QueueBytes[edgesync.Critical] == size && p.Class == edgesync.Satellite {
				return true
			}
		}
		return false
	})
	testutil.WaitFor(t, 60*time.Second, "the op acknowledged", func() bool { return outboxEmpty(a) })
	if st, err := a.Status("core"); err != nil || len(st.Transfers) != 0 {
		t.Fatalf("after the ack, transfers in flight: %+v, %v", st.Transfers, err)
	}
}

// TestStatusShowsLastConnectionError: a core whose certificate does not
// name the address the agent expects is refused, and status says why,
// with when.
func TestStatusShowsLastConnectionError(t *testing.T) {
	p, _, cfg := siteCore(t)
	cfg.Endpoints[0].ServerName = "core.wrong.example"
	a := startAgent(t, p, cfg, Options{})
	var st LinkStatus
	testutil.WaitFor(t, 30*time.Second, "a failed dial in status", func() bool {
		var err error
		st, err = a.Status("core")
		return err == nil && st.LastError != nil
	})
	if st.Connected || !bytes.Contains([]byte(st.LastError.Error), []byte("core.wrong.example")) || time.Since(st.LastError.At) > time.Minute {
		t.Fatalf("status after a refused certificate: connected %v, last error %+v", st.Connected, st.LastError)
	}
}
