package core

import (
	"testing"
	"time"

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
	// Spend the core's frame memory but for the stream's state and less
	// than a read-ahead buffer, more than its two small ops hold.
	spent := int(ts.srv.cfg.MaxFrameMemory) - (streamStateCost + readAheadSize - 1)
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
