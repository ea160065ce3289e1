package jsstore

import (
	"context"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/wire"
)

// TestOpsPerStreamTwoCores: an agent with CapOpsPerStream sends 16 small
// events on one stream to a core on JetStream: each is acknowledged, in
// order, and stored once, in order. It then sends 8 on a stream cut
// inside op 5 (the agent's connection broke mid-write, say): ops 0-4 are
// acknowledged, op 5 refused, and it fails over to a second core on the
// same JetStream and sends all 8 again: each is stored once, 0-4 as
// duplicates.
func TestOpsPerStreamTwoCores(t *testing.T) {
	f := newFleetOnOwnServer(t)
	a, b := f.startCore("core-a", 1), f.startCore("core-b", 1)
	agent := f.pki.AgentName
	dial := func(addr string) *hostile.Client {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := hostile.Dial(ctx, addr, f.pki.ClientTLS(t, "127.0.0.1"), wire.CapOpsPerStream)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if !c.Welcome.Caps.Has(wire.CapOpsPerStream) {
			t.Fatal("the core did not grant several ops per stream")
		}
		return c
	}
	ops := func(from, n int) ([]edgesync.OpID, [][]wire.Frame) {
		var ids []edgesync.OpID
		var frames [][]wire.Frame
		for i := from; i < from+n; i++ {
			id := storetest.OpID(uint64(i + 1))
			fr, err := hostile.WholeOp(id, "log", storetest.Payload(uint64(i), 512))
			if err != nil {
				t.Fatal(err)
			}
			ids, frames = append(ids, id), append(frames, fr)
		}
		return ids, frames
	}
	send := func(c *hostile.Client, frames []wire.Frame) []wire.Frame { return sendOps(t, c, frames) }
	acked := func(answers []wire.Frame, ids []edgesync.OpID) {
		t.Helper()
		for i, id := range ids {
			if i >= len(answers) {
				t.Fatalf("%d answers for %d ops", len(answers), len(ids))
			}
			if ack, ok := answers[i].(*wire.Ack); !ok || ack.IDs[0] != id {
				t.Fatalf("answer %d: %s %+v, want the ACK of %s", i, answers[i].Type(), answers[i], id)
			}
		}
	}
	stored := func(want []edgesync.OpID) {
		t.Helper()
		storetest.CheckEvents(t, a.store, agent, want)
	}

	ca := dial(a.addr)
	ids, frames := ops(0, 16)
	var all []wire.Frame
	for _, fr := range frames {
		all = append(all, fr...)
	}
	answers := send(ca, all)
	acked(answers, ids)
	if len(answers) != 16 {
		t.Fatalf("%d answers for 16 ops", len(answers))
	}
	stored(ids)

	more, frames := ops(16, 8)
	var cut []wire.Frame
	for _, fr := range frames[:5] {
		cut = append(cut, fr...)
	}
	cut = append(cut, frames[5][:2]...) // op 5's header and DATA, no COMMIT
	answers = send(ca, cut)
	acked(answers, more[:5])
	if len(answers) != 6 || answers[5].Type() != wire.FrameNack {
		t.Fatalf("answers to a stream cut inside op 5: %d, the last %s; want 5 ACKs and op 5's NACK", len(answers), answers[len(answers)-1].Type())
	}
	stored(append(ids, more[:5]...))

	cb := dial(b.addr)
	all = all[:0]
	for _, fr := range frames {
		all = append(all, fr...)
	}
	acked(send(cb, all), more)
	stored(append(ids, more...))
	st := b.srv.Stats()
	if st.OpsDuplicate != 5 || st.OpsApplied != 3 {
		t.Errorf("core b: %d applied, %d duplicates; want 3 and 5", st.OpsApplied, st.OpsDuplicate)
	}
}

// TestOpsPerStreamDeltaOnEarlierOpJetStream: on JetStream, as on bbolt
// (core.TestOpsPerStreamDeltaOnEarlierOp), a delta whose base is the
// version an earlier op of its stream stores is acknowledged and makes
// the key's current version, byte for byte; one against a version the
// stream replaced is refused base-mismatch.
func TestOpsPerStreamDeltaOnEarlierOpJetStream(t *testing.T) {
	f := newFleetOnOwnServer(t)
	c := f.startCore("core-a", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := hostile.Dial(ctx, c.addr, f.pki.ClientTLS(t, "127.0.0.1"), wire.CapOpsPerStream)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	v1 := storetest.Payload(7, 8<<10)
	v2 := append(append([]byte(nil), v1[:100]...), v1[200:]...)
	v3 := append(append([]byte(nil), v2...), "a third version"...)
	steps := []struct {
		data, base []byte
		want       wire.FrameType
	}{{v1, nil, wire.FrameAck}, {v2, v1, wire.FrameAck}, {v3, v2, wire.FrameAck}, {v2, v1, wire.FrameNack}}
	var all []wire.Frame
	for i, st := range steps {
		frames, err := hostile.StateOp(storetest.OpID(uint64(i+1)), "k", st.data, st.base)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, frames...)
	}
	answers := sendOps(t, cl, all)
	if len(answers) != len(steps) {
		t.Fatalf("%d answers for %d ops", len(answers), len(steps))
	}
	for i, a := range answers {
		if a.Type() != steps[i].want || a.Type() == wire.FrameNack && a.(*wire.Nack).Code != wire.CodeBaseMismatch {
			t.Fatalf("op %d answered %s %+v, want %s (a NACK base-mismatch)", i, a.Type(), a, steps[i].want)
		}
	}
	storetest.CheckObject(t, c.store, f.pki.AgentName, "k", v3, "after a stream of a version and two deltas on it")
}

// sendOps writes frames on a new stream of c in one write, closes its
// send side and returns the core's answers, up to the stream's end.
func sendOps(t *testing.T, c *hostile.Client, frames []wire.Frame) []wire.Frame {
	t.Helper()
	b, err := hostile.Append(nil, frames...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	str, err := c.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer str.CancelRead(0)
	if _, err := str.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := str.Close(); err != nil {
		t.Fatal(err)
	}
	answers, err := hostile.ReadAll(str, 30*time.Second, 2*wire.MaxOpsPerStream)
	if err != nil {
		t.Fatal(err)
	}
	return answers
}
