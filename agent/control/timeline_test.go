package control

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestTimelineCommand: transport.bandwidth.timeline answers what the
// status page plots (the agent's Timeline): one point a second with the
// class, the mode and the queue per priority, in the documented order. It
// answers while the link monitor is stopped too, unlike history.
func TestTimelineCommand(t *testing.T) {
	a := offlineAgent(t, nil)
	env := startControl(t, a, config.Control{})
	ctx := context.Background()
	sat := edgesync.Satellite
	if err := a.Switch("core", linkmon.Pin{Class: &sat}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Enqueue(ctx, outbox.NewOp{Endpoint: "core", Key: "logs", Priority: edgesync.Analytics, Payload: bytes.NewReader([]byte("line"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.StopMonitor("core"); err != nil {
		t.Fatal(err)
	}
	var tl agent.Timeline
	testutil.WaitFor(t, 10*time.Second, "a point with the pinned class and the queued op", func() bool {
		if err := env.c.Call(ctx, CmdTimeline, TimelineRequest{Window: "1m"}, &tl); err != nil {
			t.Fatalf("timeline: %v", err)
		}
		n := len(tl.Points)
		return n > 0 && tl.Points[n-1].Class == sat && tl.Points[n-1].QueueOps[edgesync.Analytics] == 1
	})
	last := tl.Points[len(tl.Points)-1]
	if tl.Endpoint != "core" || tl.Interval != agent.TimelineInterval || len(tl.Priorities) != edgesync.NumPriorities ||
		tl.Priorities[edgesync.Analytics] != edgesync.Analytics || last.Mode != edgesync.SyncDeltaZstd || last.Connected ||
		last.QueueBytes[edgesync.Analytics] != 4 || time.Since(last.At) > 10*time.Second {
		t.Fatalf("timeline: %+v, last point %+v", tl, last)
	}
	wantStatus(t, env.c.Call(ctx, CmdTimeline, TimelineRequest{Window: "soon"}, nil), http.StatusBadRequest, "bad_request")
	wantStatus(t, env.c.Call(ctx, CmdTimeline, TimelineRequest{Endpoint: "mars"}, nil), http.StatusNotFound, "unknown_endpoint")
}
