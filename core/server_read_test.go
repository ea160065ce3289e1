package core

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// TestReadAheadReserved: an op stream's read-ahead buffer counts in the
// frame memory while the stream holds it, and is given back with it.
func TestReadAheadReserved(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, wire.CapOpsPerStream)
	str := openStream(t, c)
	defer str.CancelRead(0)
	ids, b := packedOps(t, 1, 0, 2, 512)
	_, one := packedOps(t, 1, 0, 1, 512) // b's first op
	frames, err := hostile.WholeOp(ids[1], "ev", payload(1, 512))
	if err != nil {
		t.Fatal(err)
	}
	head, err := hostile.Append(nil, frames[0])
	if err != nil {
		t.Fatal(err)
	}
	// The first op whole, the second's OP_HEADER only: the stream holds
	// its buffer while it waits for the rest. Its two ops' headers and
	// the first's bytes hold less than a buffer more.
	sent := len(one) + len(head)
	if _, err := str.Write(b[:sent]); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the stream's read-ahead buffer reserved", func() bool {
		return ts.srv.Stats().FrameMemory >= readAheadSize+2*packedOpOverhead
	})
	if _, err := str.Write(b[sent:]); err != nil {
		t.Fatal(err)
	}
	if err := str.Close(); err != nil {
		t.Fatal(err)
	}
	answers, err := hostile.ReadAll(str, 10*time.Second, 2*wire.MaxOpsPerStream)
	if err != nil {
		t.Fatalf("answers %s: %v", describe(answers), err)
	}
	wantAnswers(t, answers, ids, nil, 0, wire.CodeOK)
	storedOnce(t, ts.store, "site-1", ids, nil)
	testutil.WaitFor(t, 10*time.Second, "every byte of frame memory given back", func() bool { return ts.srv.Stats().FrameMemory == 0 })
}

// TestReadAheadOptional: a stream whose read-ahead buffer does not fit
// the frame memory left reads its frames unbuffered, and its ops are
// answered and stored as any; the buffer it went without is no refusal
// of the frame memory's.
func TestReadAheadOptional(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, wire.CapOpsPerStream)
	// Spend the core's frame memory but for the stream's own state and
	// less than a read-ahead buffer, more than its two small ops hold.
	spent := int(ts.srv.cfg.MaxFrameMemory) - streamStateCost - (readAheadSize - 1)
	if err := ts.srv.mem.Reserve(spent); err != nil {
		t.Fatal(err)
	}
	ids, b := packedOps(t, 1, 0, 2, 64)
	answers := sendStream(t, c, b)
	wantAnswers(t, answers, ids, nil, 0, wire.CodeOK)
	storedOnce(t, ts.store, "site-1", ids, nil)
	if st := ts.srv.Stats(); st.FrameMemoryRefused != 0 {
		t.Errorf("%d frame memory refusals, want none: the stream needs no read-ahead", st.FrameMemoryRefused)
	}
	ts.srv.mem.Release(spent)
	testutil.WaitFor(t, 10*time.Second, "every byte of frame memory given back", func() bool { return ts.srv.Stats().FrameMemory == 0 })
}

// TestFrameTimeoutAfterReadAhead: a frame of which the read-ahead holds
// a part, the rest never coming, still ends at the frame timeout: the
// deadline is set when the core first waits for the frame's bytes. The
// agent reads NACK busy.
func TestFrameTimeoutAfterReadAhead(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := startServer(t, Config{}, func(c *ServerConfig) { c.FrameTimeout = timeout })
	c := ts.dial(t, wire.CapOpsPerStream)
	ids, b := packedOps(t, 1, 0, 2, 512)
	str := openStream(t, c)
	defer str.CancelRead(0)
	// The first op whole and most of the second: the core reads them
	// ahead, and then waits for the second's last bytes.
	start := time.Now()
	if _, err := str.Write(b[:len(b)-8]); err != nil {
		t.Fatal(err)
	}
	answers, err := hostile.ReadAll(str, 10*time.Second, 2*wire.MaxOpsPerStream)
	if err != nil {
		t.Fatalf("answers %s: %v", describe(answers), err)
	}
	if took := time.Since(start); took < timeout {
		t.Errorf("answered after %v, before the frame timeout %v", took, timeout)
	}
	wantAnswers(t, answers, ids[:1], ids[1:], wire.CodeBusy, wire.CodeOK)
	storedOnce(t, ts.store, "site-1", ids[:1], ids[1:])
}

// TestReadAheadLeavesFrameMemory: the read-ahead buffers of op streams
// that wait take no frame memory that frames need. One connection opens
// 60 op streams that each wait in the body of a DATA frame (64 KiB of
// frame memory each, and the stream's own state); the core's frame
// memory is that, a kilobyte more per stream, and one connection's least
// (MinConnFrameMemory: one maximal DATA frame and its chunk). Another connection's maximal op
// must be stored: before the read-ahead, the waiting streams held no
// more, and a read-ahead is memory a stream can do without.
func TestReadAheadLeavesFrameMemory(t *testing.T) {
	const waiting = 60
	const bodyStep = 64 << 10 // what a DATA body's buffer first takes (wire.Reader)
	const perWaiting = bodyStep + streamStateCost + 1<<10
	ts := startServer(t, Config{}, func(c *ServerConfig) {
		c.MaxConnFrameMemory = MinConnFrameMemory
		c.MaxFrameMemory = MinConnFrameMemory + waiting*perWaiting
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a := ts.dial(t, wire.CapOpsPerStream)
	if _, err := hostile.PartialData(ctx, a, 1, waiting, 1<<10); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "every waiting stream's DATA body reserved", func() bool {
		return ts.srv.Stats().FrameMemory >= waiting*(bodyStep+streamStateCost)
	})
	held := ts.srv.Stats().FrameMemory

	b := ts.dial(t, wire.CapOpsPerStream)
	str := openStream(t, b)
	defer str.CancelRead(0)
	plain := testutil.RandomBytes(7, wire.MaxChunkSize-64) // its encoding fills a maximal chunk
	id := hostile.OpID(2, 1)
	hdr := hostile.OpHeader(id, "maximal", uint64(len(plain)), wire.MaxChunkSize)
	hdr.PayloadHash = sha256.Sum256(plain)
	if err := errors.Join(hostile.Write(str, hdr, fullChunkSized(t, id, plain, wire.MaxChunkSize, int64(len(plain))), &wire.Commit{ID: id, Chunks: 1}), str.Close()); err != nil {
		t.Fatal(err)
	}
	answers, err := hostile.ReadAll(str, 30*time.Second, 4)
	if err != nil {
		t.Fatalf("answers %s: %v", describe(answers), err)
	}
	if len(answers) != 1 || answers[0].Type() != wire.FrameAck {
		t.Fatalf("a maximal op beside %d waiting streams (holding %d bytes of frame memory, %d of them beyond their DATA bodies and stream state) answered %s; want ACK: read-ahead buffers took the memory frames need",
			waiting, held, held-waiting*(bodyStep+streamStateCost), describe(answers))
	}
	storedOnce(t, ts.store, "site-1", []edgesync.OpID{id}, nil)
}
