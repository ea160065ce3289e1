package jsstore

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/wire"
)

// TestResumeWhileTheOldCoreStillWrites: an agent that left core A in the
// middle of a large op resumes it on core B, and A, still storing the
// lane data it had received, writes a chunk more after B answered where
// to resume. B receives that chunk again from the agent and must take the
// store's word for what is held, not refuse the op as written out of
// order (which parked it in the agent until its next session).
func TestResumeWhileTheOldCoreStillWrites(t *testing.T) {
	f := newFleetOnOwnServer(t)
	b := f.startCore("core-b", 1)
	cfgA := f.storeConfig(1)
	cfgA.Name = "core-a"
	a := openWith(t, cfgA)

	const chunk = 64 << 10
	data := storetest.Payload(7, 5*chunk)
	hash := sha256.Sum256(data)
	var id edgesync.OpID
	id[0], id[15] = 0x18, 1
	agentName := f.pki.AgentName
	ph := core.PartialHeader{OpID: id, Key: "bulk/log", Kind: edgesync.EventOp, Priority: edgesync.Background, Size: int64(len(data)), Hash: hash}
	if _, _, err := a.BeginPartial(agentName, ph); err != nil {
		t.Fatal(err)
	}
	if err := a.WritePartial(agentName, id, 0, data[:2*chunk]); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := hostile.Dial(ctx, b.addr, f.pki.ClientTLS(t, "127.0.0.1"), wire.CapResume)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	str, err := c.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer str.CancelRead(0)
	hdr := &wire.OpHeader{ID: id, Key: ph.Key, Priority: ph.Priority, Kind: ph.Kind, Mode: uint8(codec.ModeFull),
		PlainSize: uint64(len(data)), ChunkSize: chunk, PayloadHash: hash}
	if err := hostile.Write(str, hdr); err != nil {
		t.Fatal(err)
	}
	fr, err := hostile.Read(str, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ans, ok := fr.(*wire.ResumeAnswer)
	if !ok || ans.Held != 2*chunk {
		t.Fatalf("core B answered %#v, want RESUME_ANSWER holding %d bytes", fr, 2*chunk)
	}
	// Core A stores the third chunk after B's answer.
	if err := a.WritePartial(agentName, id, 2*chunk, data[2*chunk:3*chunk]); err != nil {
		t.Fatal(err)
	}
	ch, err := codec.NewHeader(codec.ModeFull, codec.LevelDefault, chunk, int64(len(data)), codec.Hash(hash), nil)
	if err != nil {
		t.Fatal(err)
	}
	// A write fails once the core answered and stopped reading: its
	// answer says why.
	rest, err := hostile.DataFrames(&ch, id, data, 2)
	if err != nil {
		t.Fatal(err)
	}
	var werr error
	for _, d := range rest {
		if werr = hostile.Write(str, d); werr != nil {
			break
		}
	}
	if werr == nil {
		werr = hostile.Write(str, &wire.Commit{ID: id, Chunks: uint64(ch.Chunks())})
	}
	fr, err = hostile.Read(str, time.Minute)
	if err != nil {
		t.Fatalf("no answer to the op (write: %v): %v", werr, err)
	}
	if _, ok := fr.(*wire.Ack); !ok {
		t.Fatalf("core B answered the commit with %#v, want ACK", fr)
	}
	f.ops = append(f.ops, fleetOp{id: id, kind: edgesync.EventOp, key: ph.Key, data: data})
	f.verify()
}
