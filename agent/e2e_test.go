package agent

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestSendsToCoreExactlyOnce sends keyed and event ops of several sizes over
// real QUIC on loopback and checks that the core holds each byte for byte.
func TestSendsToCoreExactlyOnce(t *testing.T) {
	// The op data of large ops goes on the data lane when both ends agree
	// (CapLane), and on QUIC streams when either one declines.
	for _, tc := range []struct {
		name              string
		agentOff, coreOff bool
	}{
		{"lane", false, false},
		{"streams-agent-declines", true, false},
		{"streams-core-declines", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testutil.NewPKI(t, "site-1")
			c := coretest.Start(t, p, func(sc *core.ServerConfig) { sc.DisableLane = tc.coreOff })
			a := startAgent(t, p, coretest.AgentConfig(t, p, c.Addr.String()), Options{DisableLane: tc.agentOff})
			sendsExactlyOnce(t, a, c, !tc.agentOff && !tc.coreOff)
		})
	}
}

func sendsExactlyOnce(t *testing.T, a *Agent, c *coretest.Core, lane bool) {
	rnd := rand.New(rand.NewPCG(1, 2))
	want := map[string][]byte{}
	sizes := []int{0, 100, 4 << 10, 200 << 10, 3 << 20}
	for i, n := range sizes {
		data := make([]byte, n)
		for j := range data {
			data[j] = byte(rnd.IntN(16)) // compressible
		}
		key := fmt.Sprintf("obj/%d", i)
		want[key] = data
		enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: key, Priority: edgesync.Priority(i % 6), Kind: edgesync.StateOp, Payload: bytes.NewReader(data)})
	}
	testutil.WaitFor(t, 30*time.Second, "the outbox to drain", func() bool { return outboxEmpty(a) })
	for key, data := range want {
		wantAtCore(t, c, key, data)
	}
	st := c.Server.Stats()
	if st.OpsApplied != int64(len(sizes)) {
		t.Errorf("core applied %d ops, want %d (stats %+v)", st.OpsApplied, len(sizes), st)
	}
	chunk := a.Config().Params["core"].ChunkSize
	as := a.Stats()[0]
	switch {
	case lane && (st.LaneOps == 0 || as.LaneOps != st.LaneOps):
		t.Errorf("with the lane agreed, core stored %d lane ops and the agent counted %d; want ≥ 1 and equal (chunk size %d)", st.LaneOps, as.LaneOps, chunk)
	case !lane && (st.LaneOps != 0 || as.LaneOps != 0 || as.Lane):
		t.Errorf("without the lane, core stored %d lane ops and the agent counted %d (lane up: %v); want none", st.LaneOps, as.LaneOps, as.Lane)
	}
}
