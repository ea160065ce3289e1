package core

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/wire"
)

// laneFixture is one op begun in a real store, its DATA frames, and the
// lane receiver waiting for them.
type laneFixture struct {
	st      *Store
	h       *opHandler
	router  *laneRouter
	dropped atomic.Int64
	recv    *laneRecv
	hdr     *wire.OpHeader
	payload []byte
	frames  [][]byte // DATA frame of each chunk
}

const laneTestAgent = "site-1"

func newLaneFixture(t *testing.T, size, chunk int, held int64) *laneFixture {
	return newLaneFixtureEager(t, size, chunk, held, false)
}

// newLaneFixtureEager is newLaneFixture for an op whose header says
// eager: its lane data starts at chunk 0, whatever the store holds.
func newLaneFixtureEager(t *testing.T, size, chunk int, held int64, eager bool) *laneFixture {
	t.Helper()
	st, _ := openTest(t, Config{})
	rnd := rand.New(rand.NewPCG(5, 6))
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte(rnd.IntN(8)) // compressible: chunks differ in size
	}
	hash, _, err := codec.HashOf(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := codec.NewHeader(codec.ModeZstd, codec.LevelFastest, chunk, int64(size), hash, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := edgesync.OpID{1, 2, 3}
	hdr := &wire.OpHeader{ID: id, Key: "k", Priority: edgesync.Normal, Kind: edgesync.StateOp, Mode: uint8(codec.ModeZstd),
		PlainSize: uint64(size), ChunkSize: uint32(chunk), PayloadHash: hash, Lane: true, LaneTransfer: 9, Eager: eager}
	if _, _, err := st.BeginPartial(laneTestAgent, PartialHeader{OpID: id, Key: "k", Kind: edgesync.StateOp, Priority: edgesync.Normal, Size: int64(size), Hash: hash}); err != nil {
		t.Fatal(err)
	}
	if held > 0 {
		if err := st.WritePartial(laneTestAgent, id, 0, payload[:held]); err != nil {
			t.Fatal(err)
		}
	}
	f := &laneFixture{st: st, hdr: hdr, payload: payload}
	f.h = &opHandler{store: st, stats: &serverStats{}, agent: laneTestAgent, log: hclog.NewNullLogger(),
		mem: newMemBudget("connection", config.DefaultCore().Limits.MaxConnFrameMemory, nil, new(atomic.Int64))}
	f.router = newLaneRouter(&f.dropped)
	f.h.lane = f.router
	chunks, err := hostile.DataFrames(&ch, id, payload, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range chunks {
		fr, err := d.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		f.frames = append(f.frames, fr)
	}
	chCopy := ch
	f.recv = newLaneRecv(f.h, &chCopy, nil, hdr, held)
	if err := f.router.register(hdr.LaneTransfer, f.recv); err != nil {
		t.Fatal(err)
	}
	return f
}

// batches cuts the frames from chunk from on into transfers of per chunks.
func (f *laneFixture) batches(from, per int) map[uint64][]byte {
	out := map[uint64][]byte{}
	for i := from; i < len(f.frames); i += per {
		var b []byte
		for j := i; j < min(i+per, len(f.frames)); j++ {
			b = append(b, f.frames[j]...)
		}
		out[uint64(i)] = b
	}
	return out
}

// deliverInterleaved delivers every transfer in random pieces, in order
// within a transfer and interleaved across transfers, as the lane does.
func (f *laneFixture) deliverInterleaved(t *testing.T, transfer uint64, batches map[uint64][]byte, seed uint64) {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, seed))
	sent := map[uint64]int{}
	for round := 0; ; round++ {
		if round > 100_000 {
			t.Fatal("deliverInterleaved did not finish")
		}
		remaining := false
		for first, b := range batches { // map order: random across transfers
			at := sent[first]
			if at >= len(b) {
				continue
			}
			remaining = true
			if rnd.IntN(2) == 0 {
				continue
			}
			n := min(len(b)-at, 1+rnd.IntN(3000))
			f.router.deliver(laneTestID(transfer, first), int64(at), b[at:at+n])
			sent[first] = at + n
		}
		if !remaining {
			return
		}
	}
}

func laneTestID(transfer, first uint64) [16]byte {
	var id [16]byte
	for i := range 8 {
		id[i] = byte(transfer >> (56 - 8*i))
		id[8+i] = byte(first >> (56 - 8*i))
	}
	return id
}

func (f *laneFixture) commitAndCheck(t *testing.T) {
	t.Helper()
	complete, err := f.recv.finish()
	if err != nil || !complete {
		t.Fatalf("lane receiver: complete %v, error %v; want every chunk stored", complete, err)
	}
	if _, err := f.st.CommitPartial(laneTestAgent, f.hdr.ID); err != nil {
		t.Fatal(err)
	}
	_, obj, err := f.st.Current(laneTestAgent, "k")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(io.NewSectionReader(obj, 0, obj.Size()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, f.payload) {
		t.Fatalf("stored %d bytes, sent %d, or they differ", len(got), len(f.payload))
	}
}

// Interleaved batches of chunks, delivered in random pieces, are stored in
// chunk order and byte-identical.
func TestLaneRecvInterleavedBatches(t *testing.T) {
	for _, per := range []int{1, 3, 100} {
		f := newLaneFixture(t, 200<<10+123, 16<<10, 0)
		f.deliverInterleaved(t, 9, f.batches(0, per), uint64(per))
		f.commitAndCheck(t)
		if f.dropped.Load() != 0 {
			t.Fatalf("%d lane bytes dropped", f.dropped.Load())
		}
	}
}

// A resumed attempt starts at the chunk holding what the store has, and
// lane data of an earlier attempt (another transfer number) is dropped.
func TestLaneRecvResumeIgnoresOldAttempt(t *testing.T) {
	f := newLaneFixture(t, 100<<10, 16<<10, 40<<10) // held inside chunk 2
	f.router.end(8, nil)                            // the earlier attempt's handler ended
	f.router.deliver(laneTestID(8, 0), 0, f.frames[0])
	if f.dropped.Load() != int64(len(f.frames[0])) {
		t.Fatalf("old attempt's %d bytes: %d counted as dropped", len(f.frames[0]), f.dropped.Load())
	}
	f.deliverInterleaved(t, 9, f.batches(2, 2), 1)
	f.commitAndCheck(t)
}

// An eager attempt sends from chunk 0 without knowing what the core
// holds: the chunks held already are skipped, the rest stored, and the
// result is byte-identical.
func TestLaneRecvEagerSkipsHeld(t *testing.T) {
	f := newLaneFixtureEager(t, 100<<10, 16<<10, 40<<10, true) // held inside chunk 2
	f.deliverInterleaved(t, 9, f.batches(0, 3), 2)
	f.commitAndCheck(t)
	if f.dropped.Load() != 0 {
		t.Fatalf("%d lane bytes dropped", f.dropped.Load())
	}
}

// Eager lane data can overtake its op's header: it waits for the op to
// register and is stored, not dropped; data of an ended transfer is
// dropped at once, and closing the router frees a waiting Deliver.
func TestLaneRouterWaitsForRegistration(t *testing.T) {
	f := newLaneFixture(t, 100<<10, 16<<10, 0)
	f.router.end(9, f.recv) // start over: transfer 10 is not registered yet
	recv := newLaneRecv(f.h, f.recv.ch, nil, f.hdr, 0)
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		for first, b := range f.batches(0, 100) {
			f.router.deliver(laneTestID(10, first), 0, b)
		}
	}()
	select {
	case <-delivered:
		t.Fatal("lane data for an unregistered transfer returned before the op registered")
	case <-time.After(50 * time.Millisecond):
	}
	if err := f.router.register(10, recv); err != nil {
		t.Fatal(err)
	}
	select {
	case <-delivered:
	case <-time.After(5 * time.Second):
		t.Fatal("lane data still waiting 5 s after its op registered")
	}
	f.recv = recv
	f.commitAndCheck(t)
	if f.dropped.Load() != 0 {
		t.Fatalf("%d lane bytes dropped", f.dropped.Load())
	}

	f.router.end(10, recv)
	f.router.deliver(laneTestID(10, 0), 0, f.frames[0]) // ended: returns at once
	if got := f.dropped.Load(); got != int64(len(f.frames[0])) {
		t.Fatalf("dropped %d bytes of an ended transfer, want %d", got, len(f.frames[0]))
	}
	if err := f.router.register(10, recv); !errors.Is(err, wire.ErrBadRequest) {
		t.Fatalf("registering an ended transfer again: %v, want ErrBadRequest", err)
	}

	waiting := make(chan struct{})
	go func() {
		defer close(waiting)
		f.router.deliver(laneTestID(11, 0), 0, f.frames[0])
	}()
	f.router.close()
	select {
	case <-waiting:
	case <-time.After(5 * time.Second):
		t.Fatal("a Deliver waiting for its op did not return when the router closed")
	}
}

// What the lane must not carry fails the transfer with a reason, and
// nothing past the failure is stored.
func TestLaneRecvRefuses(t *testing.T) {
	t.Run("over the memory bound", func(t *testing.T) {
		f := newLaneFixture(t, 100<<10, 16<<10, 0)
		f.recv.limit = 20 << 10 // the fixture's chunks are far smaller than the real bound
		var ahead []byte
		for _, fr := range f.frames[1:] {
			ahead = append(ahead, fr...)
		}
		for len(ahead) < 21<<10 {
			ahead = append(ahead, ahead...)
		}
		f.router.deliver(laneTestID(9, 1), 0, ahead)
		if err := f.recv.failed(); !errors.Is(err, wire.ErrTooLarge) {
			t.Fatalf("data beyond the bound: %v, want ErrTooLarge", err)
		}
	})
	t.Run("not a DATA frame", func(t *testing.T) {
		f := newLaneFixture(t, 100<<10, 16<<10, 0)
		c, _ := (&wire.Commit{ID: f.hdr.ID, Chunks: 7}).Append(nil)
		f.router.deliver(laneTestID(9, 0), 0, c)
		if err := f.recv.failed(); !errors.Is(err, wire.ErrBadRequest) {
			t.Fatalf("COMMIT on the lane: %v, want ErrBadRequest", err)
		}
	})
	t.Run("chunk beyond the op", func(t *testing.T) {
		f := newLaneFixture(t, 100<<10, 16<<10, 0)
		f.router.deliver(laneTestID(9, 99), 0, f.frames[0])
		if err := f.recv.failed(); !errors.Is(err, wire.ErrBadRequest) {
			t.Fatalf("chunk 99 of 7: %v, want ErrBadRequest", err)
		}
	})
	t.Run("frame at the wrong chunk", func(t *testing.T) {
		f := newLaneFixture(t, 100<<10, 16<<10, 0)
		f.router.deliver(laneTestID(9, 0), 0, f.frames[1])
		if err := f.recv.failed(); !errors.Is(err, wire.ErrBadRequest) {
			t.Fatalf("chunk 1's frame as chunk 0: %v, want ErrBadRequest", err)
		}
		if n, _ := f.st.PartialSize(laneTestAgent, f.hdr.ID); n != 0 {
			t.Fatalf("store holds %d bytes after a refused frame", n)
		}
	})
	t.Run("commit before every chunk", func(t *testing.T) {
		f := newLaneFixture(t, 100<<10, 16<<10, 0)
		f.router.deliver(laneTestID(9, 0), 0, f.frames[0])
		if complete, err := f.recv.finish(); complete || err != nil {
			t.Fatalf("after one chunk of %d: complete %v, error %v", len(f.frames), complete, err)
		}
		f.router.deliver(laneTestID(9, 1), 0, f.frames[1]) // after finish: ignored
		if n, _ := f.st.PartialSize(laneTestAgent, f.hdr.ID); n != 16<<10 {
			t.Fatalf("store holds %d bytes, want the first chunk's %d", n, 16<<10)
		}
	})
}
