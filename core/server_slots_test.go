package core

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/wire"
)

// TestEarlyAnswersFreeStreamSlots answers 150 ops early on one connection
// of at most 64 streams: a NACK to the header of an op too large (the
// client keeps its side open, as an agent waiting for the answer does), a
// NACK to an expired one-chunk op sent whole (header, DATA, COMMIT), a
// duplicate ACK to a one-chunk op applied before, and an ERROR to a stream
// that opens with COMMIT. quic-go frees a stream's slot only once it is
// read to its end or cancelled, so a core that does neither stops every
// new stream after 63 such answers.
func TestEarlyAnswersFreeStreamSlots(t *testing.T) {
	ts := startServer(t, Config{}, func(c *ServerConfig) { c.MaxStreams = 64; c.MaxOpBytes = 1 << 20 })
	c := ts.dial(t, 0)

	dupID := edgesync.OpID{0xd0}
	dupData := []byte("applied before")
	dupHdr := PartialHeader{OpID: dupID, Key: "dup", Kind: edgesync.EventOp, Priority: edgesync.Normal,
		Size: int64(len(dupData)), Hash: sha256.Sum256(dupData)}
	if _, err := ts.store.Apply("site-1", dupHdr, bytes.NewReader(dupData)); err != nil {
		t.Fatal(err)
	}

	for i := range 150 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		str, err := c.Open(ctx)
		cancel()
		if err != nil {
			t.Fatalf("stream %d did not open within 10 s (%v): the core has not freed the slots of the streams it answered early", i, err)
		}
		kind, want := earlyAnswer(t, str, i, dupID, dupData)
		f, err := hostile.Read(str, 10*time.Second)
		if err != nil {
			t.Fatalf("stream %d (%s): no answer: %v", i, kind, err)
		}
		if f.Type() != want {
			t.Fatalf("stream %d (%s): answered %s, want %s", i, kind, f.Type(), want)
		}
	}
}

// earlyAnswer writes the i-th case of TestEarlyAnswersFreeStreamSlots to
// str and returns its name and the frame type the core must answer.
func earlyAnswer(t *testing.T, str *quic.Stream, i int, dupID edgesync.OpID, dupData []byte) (string, wire.FrameType) {
	t.Helper()
	id := hostile.OpID(0, i)
	var err error
	var name string
	var want wire.FrameType
	switch i % 4 {
	case 0:
		// A two-chunk op over MaxOpBytes: the agent waits for the
		// answer before sending more, and keeps its side open.
		name, want = "too large, side left open", wire.FrameNack
		err = hostile.Write(str, hostile.OpHeader(id, "big", 2<<20, 1<<20))
	case 1:
		name, want = "expired, sent whole", wire.FrameNack
		payload := []byte(fmt.Sprintf("expired %d", i))
		hdr := hostile.OpHeader(id, "late", uint64(len(payload)), 64<<10)
		hdr.PayloadHash, hdr.Expires = sha256.Sum256(payload), time.Now().Add(-time.Hour)
		err = errors.Join(hostile.Write(str, hdr, fullChunk(t, id, payload), &wire.Commit{ID: id, Chunks: 1}), str.Close())
	case 2:
		name, want = "duplicate, sent whole", wire.FrameAck
		hdr := hostile.OpHeader(dupID, "dup", uint64(len(dupData)), 64<<10)
		hdr.PayloadHash = sha256.Sum256(dupData)
		err = errors.Join(hostile.Write(str, hdr, fullChunk(t, dupID, dupData), &wire.Commit{ID: dupID, Chunks: 1}), str.Close())
	default:
		name, want = "opens with COMMIT", wire.FrameError
		err = hostile.Write(str, &wire.Commit{ID: id, Chunks: 1})
	}
	if err != nil {
		t.Fatalf("stream %d (%s): write: %v", i, name, err)
	}
	return name, want
}

// fullChunk is the DATA frame of a one-chunk op whose payload goes in
// full (codec.ModeFull) in chunks of 64 KiB.
func fullChunk(t *testing.T, id edgesync.OpID, payload []byte) *wire.Data {
	t.Helper()
	return fullChunkSized(t, id, payload, 64<<10, int64(len(payload)))
}

// fullChunkSized is the DATA frame of the first chunk, plain, of an op of
// size bytes in full (codec.ModeFull) in chunks of chunkSize bytes.
func fullChunkSized(t *testing.T, id edgesync.OpID, plain []byte, chunkSize int, size int64) *wire.Data {
	t.Helper()
	ch, err := codec.NewHeader(codec.ModeFull, codec.LevelDefault, chunkSize, size, sha256.Sum256(plain), nil)
	if err != nil {
		t.Fatal(err)
	}
	var enc codec.Encoder
	chunk, err := enc.EncodeChunk(nil, &ch, 0, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &wire.Data{ID: id, Chunk: chunk}
}
