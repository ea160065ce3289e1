package core

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/wire"
)

// TestAgentClosesAfterItsAck: an agent writes an op's COMMIT and then
// closes its side of the stream; on a busy machine the core's ACK can
// come before that close. A core that then cancelled the stream's receive
// side (STOP_SENDING) failed the agent's close, and the agent took an
// acknowledged op for a failed attempt. Here the agent closes only after
// the ACK and one more round trip on the connection, so that a
// STOP_SENDING sent with the ACK has arrived: the close must succeed, for
// an op of one chunk (applied whole) and one of two.
func TestAgentClosesAfterItsAck(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, 0)
	for i, size := range []int{3000, 6000} {
		t.Run(fmt.Sprintf("bytes=%d", size), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			id := hostile.OpID(0, i)
			data := payload(uint64(i), size)
			hash := sha256.Sum256(data)
			ch, err := codec.NewHeader(codec.ModeFull, codec.LevelDefault, 4096, int64(size), codec.Hash(hash), nil)
			if err != nil {
				t.Fatal(err)
			}
			frames := []wire.Frame{&wire.OpHeader{ID: id, Key: "log", Priority: edgesync.Normal, Kind: edgesync.EventOp,
				Mode: uint8(codec.ModeFull), PlainSize: uint64(size), ChunkSize: uint32(ch.ChunkSize), PayloadHash: hash}}
			chunks, err := hostile.DataFrames(&ch, id, data, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range chunks {
				frames = append(frames, d)
			}
			frames = append(frames, &wire.Commit{ID: id, Chunks: uint64(ch.Chunks())})
			str, err := c.Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := hostile.Write(str, frames...); err != nil {
				t.Fatal(err)
			}
			for {
				f, err := hostile.Read(str, 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := f.(*wire.ResumeAnswer); ok {
					continue
				}
				if _, ok := f.(*wire.Ack); !ok {
					t.Fatalf("answer %s, want ACK", f.Type())
				}
				break
			}
			// One more round trip on the connection: whatever the core
			// sent on the op's stream with its ACK has arrived.
			q, err := c.Open(ctx)
			if err == nil {
				err = hostile.Write(q, &wire.ResumeQuery{ID: id})
			}
			if err == nil {
				_, err = hostile.Read(q, 10*time.Second)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := str.Close(); err != nil {
				t.Fatalf("the agent's close after its ACK: %v", err)
			}
			if applied, err := ts.store.Applied("site-1", id); err != nil || !applied {
				t.Fatalf("op applied = %v, %v", applied, err)
			}
		})
	}
}
