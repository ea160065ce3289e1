package control

import (
	"bytes"
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/agenttest"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// TestStatsAckedOpNotQueued: an op the core acknowledges between
// transport.stats's two reads (the outbox and the endpoints' counters) is
// not in the answer both as acked and as still in the outbox.
// TestControlSendReachesCore saw that once under -race: the outbox read
// while the op was leased, the counters after its ack. Here the core
// starts, on the socket the agent's endpoint points at, only between the
// reads, and the op is acked before the second.
func TestStatsAckedOpNotQueued(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
	p := testutil.NewPKI(t, "site-1")
	sock := testutil.UDPSocket(t) // no core serves it until the first read
	a := agenttest.Start(t, p, coretest.AgentConfig(t, p, sock.LocalAddr().String()), agent.Options{})
	if _, err := a.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: "sensors/pump-3", Kind: edgesync.StateOp,
		Priority: edgesync.High, Payload: bytes.NewReader([]byte("pump-3 pressure 4.2 bar"))}); err != nil {
		t.Fatal(err)
	}
	acked := func() int64 { return a.Stats()[0].Priorities["high"].Acked }
	st, err := statsOf(a, func() {
		if n := acked(); n != 0 {
			t.Fatalf("%d ops acked before any core listened", n)
		}
		coretest.StartConn(t, p, sock, nil)
		testutil.WaitFor(t, 30*time.Second, "the op acked by the core started between the reads", func() bool { return acked() == 1 })
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := st.Endpoints[0].Priorities["high"].Acked; n > 0 && st.Outbox.Ops > 0 {
		t.Fatalf("stats count %d op acked and %d in the outbox (%d leased): the one op counted twice", n, st.Outbox.Ops, st.Outbox.Leased)
	}
	st, err = statsOf(a, nil)
	if err != nil || st.Endpoints[0].Priorities["high"].Acked != 1 || st.Outbox.Ops != 0 {
		t.Fatalf("stats after the ack: %+v, %v", st, err)
	}
}
