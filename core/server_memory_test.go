package core

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// TestDataFirstRefusedBeforeItsBody opens streams with a DATA frame that
// declares the largest body a core accepts and sends 64 KiB of it. No op
// stream may begin with DATA, so the core refuses each at its header,
// without waiting for (or allocating) the body.
func TestDataFirstRefusedBeforeItsBody(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := hostile.DataFirst(ctx, c, 0, 20, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	for i, str := range a.Streams {
		f, err := hostile.Read(str, 10*time.Second)
		if err != nil {
			t.Fatalf("stream %d opening with DATA: no answer within 10 s: %v", i, err)
		}
		e, ok := f.(*wire.Error)
		if !ok || e.Code != wire.CodeBadRequest {
			t.Fatalf("stream %d opening with DATA: answered %s %+v, want ERROR bad-request", i, f.Type(), f)
		}
	}
}

// TestFrameMemoryBounded sends DATA frames that declare the largest body
// and send 1 MiB of it, on 20 streams of each of two connections, to a
// core whose frame memory is bounded to a connection's minimum, and a
// little more in all. What arrives is held (a body grows as it comes),
// but never past the bounds: the streams that would pass them are refused
// busy. Once the connections are gone every byte is given back, and an op
// goes through.
func TestFrameMemoryBounded(t *testing.T) {
	const perConn, total = MinConnFrameMemory, MinConnFrameMemory + 8<<20
	ts := startServer(t, Config{}, func(c *ServerConfig) { c.MaxConnFrameMemory, c.MaxFrameMemory = perConn, total })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var clients []*hostile.Client
	for conn := range 2 {
		c := ts.dial(t, 0)
		clients = append(clients, c)
		if _, err := hostile.PartialData(ctx, c, conn, 20, 1<<20); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "frame memory refused", func() bool { return ts.srv.Stats().FrameMemoryRefused > 0 })
	st := ts.srv.Stats()
	if st.FrameMemoryPeak > total {
		t.Fatalf("frames in flight held %d bytes, the core's bound is %d", st.FrameMemoryPeak, total)
	}
	t.Logf("held at most %d MiB of %d MiB; %d reservations refused", st.FrameMemoryPeak>>20, total>>20, st.FrameMemoryRefused)
	if st.OpsNacked == 0 {
		t.Fatal("no op refused busy although reservations were")
	}
	for _, c := range clients {
		c.Close()
	}
	testutil.WaitFor(t, 10*time.Second, "every byte of frame memory given back", func() bool { return ts.srv.Stats().FrameMemory == 0 })

	c := ts.dial(t, 0)
	str := openStream(t, c)
	payload := make([]byte, 1<<20)
	id := hostile.OpID(9, 1)
	hdr := hostile.OpHeader(id, "after", uint64(len(payload)), 1<<20)
	hdr.PayloadHash = sha256.Sum256(payload)
	if err := errors.Join(hostile.Write(str, hdr, fullChunkSized(t, id, payload, 1<<20, int64(len(payload))), &wire.Commit{ID: id, Chunks: 1}), str.Close()); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := hostile.Read(str, 10*time.Second)
		if err != nil {
			t.Fatalf("op after the attack: %v", err)
		}
		if f.Type() == wire.FrameAck {
			break
		}
		if f.Type() != wire.FrameResumeAnswer {
			t.Fatalf("op after the attack answered %s %+v", f.Type(), f)
		}
	}
}

// TestHelloStreamRefusesDataBeforeItsBody opens the control stream with a
// DATA frame declaring the largest body and sending 64 KiB of it: only
// HELLO may come there, so the core refuses it at its header, without
// waiting for the body: an ERROR, and the connection closed, both with
// the code bad-request.
func TestHelloStreamRefusesDataBeforeItsBody(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := hostile.DialRaw(ctx, ts.addr, ts.pki.ClientTLS(t, "127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The write fails if the core has closed the connection already.
	_, _ = str.Write(append(hostile.DataHead(hostile.OpID(0, 0), hostile.MaxDataBody), make([]byte, 64<<10)...))
	f, err := hostile.Read(str, 5*time.Second)
	if ae, ok := errors.AsType[*quic.ApplicationError](err); ok {
		if ae.ErrorCode != quic.ApplicationErrorCode(wire.CodeBadRequest) {
			t.Fatalf("connection closed with %v, want bad-request", ae)
		}
		return
	}
	if err != nil {
		t.Fatalf("no answer within 5 s to a control stream opening with DATA: %v", err)
	}
	if e, ok := f.(*wire.Error); !ok || e.Code != wire.CodeBadRequest {
		t.Fatalf("answered %s %+v, want ERROR bad-request", f.Type(), f)
	}
}

// TestLaneOpStreamRefusesData sends a DATA frame on the stream of an op
// whose data travels on the lane, where only its COMMIT may come: the
// core refuses the op at the frame's header with a bad-request NACK.
func TestLaneOpStreamRefusesData(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, wire.CapLane)
	if !c.Welcome.Caps.Has(wire.CapLane) {
		t.Fatal("the core did not grant the lane")
	}
	str := openStream(t, c)
	id := hostile.OpID(0, 3)
	hdr := hostile.OpHeader(id, "lane", 4<<20, 1<<20)
	hdr.Lane, hdr.LaneTransfer = true, 1
	if err := hostile.Write(str, hdr); err != nil {
		t.Fatal(err)
	}
	if f, err := hostile.Read(str, 10*time.Second); err != nil || f.Type() != wire.FrameResumeAnswer {
		t.Fatalf("answer to the header: %v, %v; want RESUME_ANSWER", f, err)
	}
	// The core may answer at the frame's header and stop the stream's
	// sending side (STOP_SENDING) before the 64 KiB are written: the
	// write then fails, and the answer is still there to read.
	if _, err := str.Write(append(hostile.DataHead(id, hostile.MaxDataBody), make([]byte, 64<<10)...)); err != nil {
		if _, ok := errors.AsType[*quic.StreamError](err); !ok {
			t.Fatal(err)
		}
	}
	f, err := hostile.Read(str, 5*time.Second)
	if err != nil {
		t.Fatalf("no answer within 5 s to DATA on a lane op's stream: %v", err)
	}
	if n, ok := f.(*wire.Nack); !ok || n.Code != wire.CodeBadRequest {
		t.Fatalf("answered %s %+v, want NACK bad-request", f.Type(), f)
	}
}
