package core

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// The agent ends its side of a stream its own way: it resets an op stream
// when it gives up on an attempt (RESET_STREAM), cancels the hello stream
// once it has the Welcome and closes an op stream after its ACK, either of
// which can meet the core's STOP_SENDING. None of these is a failure of
// the core.

// TestAgentResetIsNotAnInternalError resets an op stream in the middle of
// a DATA frame, as an agent does when it gives up on an attempt: that is
// the agent's choice, not a failure of the core, so the core answers
// nothing and neither logs nor counts an internal error.
func TestAgentResetIsNotAnInternalError(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, 0)
	str := openStream(t, c)
	id := hostile.OpID(0, 1)
	if err := hostile.Write(str, hostile.OpHeader(id, "k", 128<<10, 64<<10)); err != nil {
		t.Fatal(err)
	}
	if f, err := hostile.Read(str, 10*time.Second); err != nil || f.Type() != wire.FrameResumeAnswer {
		t.Fatalf("answer to the header: %v, %v; want RESUME_ANSWER", f, err)
	}
	if _, err := str.Write(append(hostile.DataHead(id, 64<<10+18), make([]byte, 1000)...)); err != nil {
		t.Fatal(err)
	}
	str.CancelWrite(0x42)

	f, err := hostile.Read(str, 10*time.Second)
	if err == nil {
		t.Fatalf("the core answered the agent's reset with %s %+v", f.Type(), f)
	}
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after the agent's reset the core's side ended with %v, want a clean end", err)
	}
	testutil.WaitFor(t, 10*time.Second, "the reset counted", func() bool { return ts.srv.Stats().StreamsReset == 1 })
	if n := ts.srv.Stats().InternalErrors; n != 0 {
		t.Fatalf("%d internal errors counted for the agent's reset", n)
	}
	if logs := ts.logs.String(); containsAny(logs, "[ERROR]", "[WARN]") {
		t.Fatalf("the core logged the agent's reset as a problem:\n%s", logs)
	}
}

// TestHelloStreamCanceledByTheAgent: an agent that has read the Welcome
// stops reading the hello stream (the agent does, with CancelRead), and
// its STOP_SENDING can reach the core before the core closes its side of
// the stream. That is the agent's choice and the connection stays up; a
// core that took the failed Close for its own error dropped the agent's
// new connection now and then. Here the agent cancels before it reads,
// so that the STOP_SENDING arrives before the core writes or closes,
// every time.
func TestHelloStreamCanceledByTheAgent(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	for i := range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, err := hostile.DialRaw(ctx, ts.addr, ts.pki.ClientTLS(t, "127.0.0.1"))
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		str, err := conn.OpenStreamSync(ctx)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		if err := hostile.Write(str, &wire.Hello{Versions: wire.SupportedVersions, Agent: "site-1"}); err != nil {
			cancel()
			t.Fatal(err)
		}
		str.CancelRead(0)
		// The core stops reading the hello stream after its Welcome; its
		// STOP_SENDING may come before this Close, which then fails
		// ("close called for canceled stream"): the agent's side is done
		// either way.
		if err := str.Close(); err != nil && !canceledByPeer(context.Cause(str.Context())) {
			cancel()
			t.Fatal(err)
		}
		// The connection answers an op stream: it was not dropped.
		op, err := conn.OpenStreamSync(ctx)
		if err == nil {
			err = hostile.Write(op, &wire.ResumeQuery{ID: hostile.OpID(i, 1)})
		}
		var f wire.Frame
		if err == nil {
			f, err = hostile.Read(op, 10*time.Second)
		}
		cancel()
		if err != nil {
			t.Fatalf("connection %d after the agent canceled its hello stream: %v (core: %v)", i, err, context.Cause(conn.Context()))
		}
		if f.Type() != wire.FrameResumeAnswer {
			t.Fatalf("connection %d: answer %s, want RESUME_ANSWER", i, f.Type())
		}
		conn.CloseWithError(0, "")
	}
	if n := ts.srv.Stats().InternalErrors; n != 0 {
		t.Errorf("%d internal errors counted; the agent's cancel is none", n)
	}
}

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
