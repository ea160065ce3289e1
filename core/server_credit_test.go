package core

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/wire"
)

// TestSmallOpsTwoPacketsEach sends small ops one after the other on one
// connection, each whole (OP_HEADER, DATA, COMMIT in one write) as the
// agent sends an op of one chunk, and counts the connection's packets:
// one from the agent with the op, one from the core with its answer, and
// the ACKs riding along. A core that gave each finished stream's credit
// back at once sent a MAX_STREAMS packet of its own per op, which the
// agent acked with another: four packets per op (server_credit.go).
func TestSmallOpsTwoPacketsEach(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, 0)
	const ops = 40
	send := func(i int) {
		t.Helper()
		str := openStream(t, c)
		defer str.CancelRead(0)
		id := hostile.OpID(0, i)
		payload := bytes.Repeat([]byte{byte(i)}, 512)
		hdr := hostile.OpHeader(id, "ev", uint64(len(payload)), 64<<10)
		hdr.PayloadHash = sha256.Sum256(payload)
		var b []byte
		for _, f := range []wire.Frame{hdr, fullChunk(t, id, payload), &wire.Commit{ID: id, Chunks: 1}} {
			var err error
			if b, err = f.Append(b); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := str.Write(b); err != nil {
			t.Fatalf("op %d: write: %v", i, err)
		}
		if err := str.Close(); err != nil {
			t.Fatalf("op %d: close: %v", i, err)
		}
		f, err := hostile.Read(str, 10*time.Second)
		if err != nil {
			t.Fatalf("op %d: no answer: %v", i, err)
		}
		if f.Type() != wire.FrameAck {
			t.Fatalf("op %d: answered %s, want ACK", i, f.Type())
		}
	}
	send(0) // the first op's stream settles the connection's state
	before := c.Conn.ConnectionStats()
	for i := 1; i <= ops; i++ {
		send(i)
	}
	after := c.Conn.ConnectionStats()
	sent, received := after.PacketsSent-before.PacketsSent, after.PacketsReceived-before.PacketsReceived
	perOp := float64(sent+received) / ops
	t.Logf("%d ops: %d packets sent, %d received, %.2f per op", ops, sent, received, perOp)
	// Two per op, and some room for ACKs of their own and probes when the
	// machine is slow; four per op fails (4.5-4.7 under the race detector,
	// which splits more answers from their FIN: 3.0-3.4 then).
	bound := 3.0
	if raceEnabled {
		bound = 4.0
	}
	if perOp > bound {
		t.Errorf("%.2f packets per small op (%d sent, %d received for %d ops), want at most %.1f: is the core's MAX_STREAMS sent with its answers?",
			perOp, sent, received, ops, bound)
	}
	if got := ts.srv.Stats().OpsApplied; got != ops+1 {
		t.Errorf("ops applied %d, want %d", got, ops+1)
	}
}
