package core

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// packedOps returns n whole event ops under key of size bytes each (IDs
// hostile.OpID(conn, from) on), and their frames in one buffer, as the
// agent writes a stream of several ops.
func packedOps(t *testing.T, conn, from, n, size int) ([]edgesync.OpID, []byte) {
	t.Helper()
	var ids []edgesync.OpID
	var b []byte
	for i := range n {
		id := hostile.OpID(conn, from+i)
		frames, err := hostile.WholeOp(id, "ev", payload(uint64(from+i), size))
		if err != nil {
			t.Fatal(err)
		}
		if b, err = hostile.Append(b, frames...); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids, b
}

// sendStream writes b on a new stream of c in one write, closes the
// stream's send side and returns the core's answers, up to its end.
func sendStream(t *testing.T, c *hostile.Client, b []byte) []wire.Frame {
	t.Helper()
	str := openStream(t, c)
	defer str.CancelRead(0)
	if _, err := str.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := str.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	answers, err := hostile.ReadAll(str, 10*time.Second, 2*wire.MaxOpsPerStream)
	if err != nil {
		t.Fatalf("answers %s: %v", describe(answers), err)
	}
	return answers
}

// describe lists answers briefly: "ack ba…0001", "nack bad-request …".
func describe(answers []wire.Frame) string {
	s := "["
	for i, f := range answers {
		if i > 0 {
			s += ", "
		}
		switch f := f.(type) {
		case *wire.Ack:
			s += fmt.Sprintf("ACK %x", f.IDs[0][14:])
		case *wire.Nack:
			s += fmt.Sprintf("NACK %x %s %q", f.ID[14:], f.Code, f.Msg)
		case *wire.Error:
			s += fmt.Sprintf("ERROR %s %q", f.Code, f.Msg)
		default:
			s += f.Type().String()
		}
	}
	return s + "]"
}

// wantAnswers checks that answers are, in order, an ACK of each of
// acked, then a NACK with code of each of nacked, then an ERROR with
// errCode if it is not CodeOK.
func wantAnswers(t *testing.T, answers []wire.Frame, acked, nacked []edgesync.OpID, code, errCode wire.Code) {
	t.Helper()
	ok := len(answers) == len(acked)+len(nacked)+map[bool]int{true: 1}[errCode != wire.CodeOK]
	for i := 0; ok && i < len(answers); i++ {
		switch f := answers[i].(type) {
		case *wire.Ack:
			ok = i < len(acked) && len(f.IDs) == 1 && f.IDs[0] == acked[i]
		case *wire.Nack:
			j := i - len(acked)
			ok = j >= 0 && j < len(nacked) && f.ID == nacked[j] && f.Code == code
		case *wire.Error:
			ok = i == len(answers)-1 && f.Code == errCode
		default:
			ok = false
		}
	}
	if !ok {
		t.Fatalf("answers %s; want ACKs of %d ops, NACKs (%s) of %d, an ERROR (%s): %v",
			describe(answers), len(acked), code, len(nacked), errCode, errCode != wire.CodeOK)
	}
}

// storedOnce checks that each of ids is among agent's events exactly
// once and each of absent is not.
func storedOnce(t *testing.T, s *Store, agent string, ids, absent []edgesync.OpID) {
	t.Helper()
	evs, err := s.Events(agent, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	n := map[edgesync.OpID]int{}
	for _, e := range evs {
		n[e.OpID]++
	}
	for i, id := range ids {
		if n[id] != 1 {
			t.Errorf("op %d (%x) stored %d times, want once", i, id[14:], n[id])
		}
	}
	for _, id := range absent {
		if n[id] != 0 {
			t.Errorf("op %x stored %d times, want not at all", id[14:], n[id])
		}
	}
}

// TestOpsPerStream: the core grants CapOpsPerStream when the agent
// offers it, unless DisableOpsPerStream; 16 ops on one stream are each
// acknowledged, in order, and stored once, in order; sent again, they
// are acknowledged as duplicates; an op refused (a bad hash) is NACKed
// and the ops after it are stored all the same; a stream of one op is
// answered as without the capability.
func TestOpsPerStream(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	if c := ts.dial(t, 0); c.Welcome.Caps.Has(wire.CapOpsPerStream) {
		t.Fatal("granted several ops per stream to an agent that did not offer it")
	}
	off := startServer(t, Config{}, func(c *ServerConfig) { c.DisableOpsPerStream = true })
	if c := off.dial(t, wire.CapOpsPerStream); c.Welcome.Caps.Has(wire.CapOpsPerStream) {
		t.Fatal("granted several ops per stream with DisableOpsPerStream")
	}
	c := ts.dial(t, wire.CapOpsPerStream)
	if !c.Welcome.Caps.Has(wire.CapOpsPerStream) {
		t.Fatalf("Welcome grants %b, want CapOpsPerStream", c.Welcome.Caps)
	}
	ids, b := packedOps(t, 0, 0, 16, 512)
	wantAnswers(t, sendStream(t, c, b), ids, nil, 0, wire.CodeOK)
	storedOnce(t, ts.store, "site-1", ids, nil)
	evs, err := ts.store.Events("site-1", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		if e.OpID != ids[i] || e.Seq != uint64(i+1) {
			t.Fatalf("event %d is op %x at %d, want op %x at %d: stored out of the stream's order", i, e.OpID[14:], e.Seq, ids[i][14:], i+1)
		}
	}
	// Again: duplicates, acknowledged.
	wantAnswers(t, sendStream(t, c, b), ids, nil, 0, wire.CodeOK)
	storedOnce(t, ts.store, "site-1", ids, nil)
	if st := ts.srv.Stats(); st.OpsApplied != 16 || st.OpsDuplicate != 16 {
		t.Errorf("applied %d, duplicates %d; want 16 and 16", st.OpsApplied, st.OpsDuplicate)
	}

	// Op 2 of 4 with a hash its data does not have.
	ids, _ = packedOps(t, 0, 100, 4, 512)
	var bad []byte
	for i, id := range ids {
		frames, err := hostile.WholeOp(id, "ev", payload(uint64(100+i), 512))
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			frames[0].(*wire.OpHeader).PayloadHash[0] ^= 1
		}
		if bad, err = hostile.Append(bad, frames...); err != nil {
			t.Fatal(err)
		}
	}
	answers := sendStream(t, c, bad)
	if len(answers) != 4 || answers[2].Type() != wire.FrameNack || answers[2].(*wire.Nack).Code != wire.CodeHashMismatch {
		t.Fatalf("answers %s, want op 2's NACK hash-mismatch among ACKs", describe(answers))
	}
	wantAnswers(t, []wire.Frame{answers[0], answers[1], answers[3]}, []edgesync.OpID{ids[0], ids[1], ids[3]}, nil, 0, wire.CodeOK)
	storedOnce(t, ts.store, "site-1", []edgesync.OpID{ids[0], ids[1], ids[3]}, ids[2:3])

	// One op alone, and an empty op among others.
	one, b := packedOps(t, 0, 200, 1, 512)
	wantAnswers(t, sendStream(t, c, b), one, nil, 0, wire.CodeOK)
	empty := hostile.OpID(0, 300)
	frames, err := hostile.WholeOp(empty, "ev", nil)
	if err != nil {
		t.Fatal(err)
	}
	two, b := packedOps(t, 0, 301, 1, 512)
	if b, err = hostile.Append(b, frames...); err != nil {
		t.Fatal(err)
	}
	wantAnswers(t, sendStream(t, c, b), append(two, empty), nil, 0, wire.CodeOK)
	storedOnce(t, ts.store, "site-1", append(one, two[0], empty), nil)
}

// TestOpsPerStreamDeltaOnEarlierOp: a delta op whose base is the version
// an op before it on the same stream stores (docs/core.md: "A delta op's
// base may be an op before it on the stream") is acknowledged, and the
// key's current version is the delta's result, byte for byte; a delta
// against a version the stream replaced before it is refused
// base-mismatch and changes nothing.
func TestOpsPerStreamDeltaOnEarlierOp(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, wire.CapOpsPerStream)
	v1 := payload(1, 8<<10)
	v2 := append([]byte(nil), v1...)
	copy(v2[100:], "the second version")
	v3 := append([]byte(nil), v2...)
	copy(v3[5000:], "the third version")
	ids := []edgesync.OpID{hostile.OpID(0, 1), hostile.OpID(0, 2), hostile.OpID(0, 3), hostile.OpID(0, 4)}
	var b []byte
	for i, v := range [][2][]byte{{v1, nil}, {v2, v1}, {v3, v2}, {v1, v1}} { // the last: v1 is no longer current
		frames, err := hostile.StateOp(ids[i], "k", v[0], v[1])
		b = appendFrames(t, b, frames, err)
	}
	answers := sendStream(t, c, b)
	wantAnswers(t, answers, ids[:3], ids[3:], wire.CodeBaseMismatch, wire.CodeOK)
	ver, obj, err := ts.store.Current("site-1", "k")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, ver.Size)
	if _, err := obj.ReadAt(got, 0); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	if !bytes.Equal(got, v3) {
		t.Fatalf("key k holds %d bytes (hash %.8x), want the third version, %d bytes", len(got), sha256.Sum256(got), len(v3))
	}
}

// TestOpsPerStreamHostile breaks each rule of a stream of several ops
// (docs/wire.md, "Several ops per stream"): the ops before the break are
// acknowledged and stored once, the op the break concerns is NACKed
// bad-request (or the stream ends with an ERROR where no op is), nothing
// after it is stored, and the same ops sent again correctly are stored
// once each.
func TestOpsPerStreamHostile(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, wire.CapOpsPerStream)
	conn := 0
	for _, tc := range []struct {
		name string
		// stream returns the bytes of a stream of the ops ids whose first
		// k are whole and correct, and which break the rules at op k.
		stream func(t *testing.T, ids []edgesync.OpID, good []byte) []byte
		k      int
		n      int       // ops in the stream, k included
		code   wire.Code // NACK of op k; CodeOK: none
		err    wire.Code // an ERROR that ends the stream; CodeOK: none
		nackAt int       // the index in ids of the op NACKed, if not k
	}{
		{"65 ops", func(t *testing.T, ids []edgesync.OpID, good []byte) []byte {
			frames, err := hostile.WholeOp(ids[64], "ev", payload(64, 512))
			return appendFrames(t, good, frames, err)
		}, 64, 65, wire.CodeBadRequest, wire.CodeOK, 0},
		{"op over 64 KiB", func(t *testing.T, ids []edgesync.OpID, good []byte) []byte {
			frames, err := hostile.WholeOp(ids[3], "ev", payload(3, wire.MaxPackedOpData+1))
			return appendFrames(t, good, frames, err)
		}, 3, 5, wire.CodeBadRequest, wire.CodeOK, 0},
		{"first op over 64 KiB then another", func(t *testing.T, ids []edgesync.OpID, good []byte) []byte {
			frames, err := hostile.WholeOp(ids[0], "ev", payload(0, 100<<10))
			b := appendFrames(t, nil, frames, err)
			frames, err = hostile.WholeOp(ids[1], "ev", payload(1, 512))
			return appendFrames(t, b, frames, err)
		}, 0, 2, wire.CodeBadRequest, wire.CodeOK, 0},
		{"lane op", func(t *testing.T, ids []edgesync.OpID, good []byte) []byte {
			hdr := hostile.OpHeader(ids[2], "ev", 512, 64<<10)
			hdr.Lane = true
			return appendFrames(t, good, []wire.Frame{hdr, &wire.Commit{ID: ids[2], Chunks: 1}}, nil)
		}, 2, 4, wire.CodeBadRequest, wire.CodeOK, 0},
		{"repeated op ID", func(t *testing.T, ids []edgesync.OpID, good []byte) []byte {
			frames, err := hostile.WholeOp(ids[1], "ev", payload(1, 512))
			return appendFrames(t, good, frames, err)
		}, 4, 6, wire.CodeBadRequest, wire.CodeOK, 1},
		{"second DATA", func(t *testing.T, ids []edgesync.OpID, good []byte) []byte {
			frames, err := hostile.WholeOp(ids[2], "ev", payload(2, 512))
			return appendFrames(t, good, []wire.Frame{frames[0], frames[1], frames[1], frames[2]}, err)
		}, 2, 4, wire.CodeBadRequest, wire.CodeOK, 0},
		{"COMMIT before DATA", func(t *testing.T, ids []edgesync.OpID, good []byte) []byte {
			frames, err := hostile.WholeOp(ids[2], "ev", payload(2, 512))
			// The COMMIT finds the op incomplete (NACK); the DATA after it
			// is no op's header (ERROR).
			frames[1], frames[2] = frames[2], frames[1]
			return appendFrames(t, good, frames, err)
		}, 2, 4, wire.CodeBadRequest, wire.CodeBadRequest, 0},
		{"RESUME_QUERY between ops", func(t *testing.T, ids []edgesync.OpID, good []byte) []byte {
			return appendFrames(t, good, []wire.Frame{&wire.ResumeQuery{ID: ids[2]}}, nil)
		}, 2, 3, wire.CodeOK, wire.CodeBadRequest, 0},
		{"cut inside op k", func(t *testing.T, ids []edgesync.OpID, good []byte) []byte {
			frames, err := hostile.WholeOp(ids[5], "ev", payload(5, 512))
			return appendFrames(t, good, frames[:2], err)
		}, 5, 8, wire.CodeBadRequest, wire.CodeOK, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn++
			all, good := packedOps(t, conn, 0, tc.k, 512)
			ids := all
			for i := tc.k; i < tc.n; i++ {
				ids = append(ids, hostile.OpID(conn, i))
			}
			answers := sendStream(t, c, tc.stream(t, ids, good))
			var nacked []edgesync.OpID
			if tc.code != wire.CodeOK {
				nacked = ids[tc.k : tc.k+1]
				if tc.nackAt != 0 {
					nacked = ids[tc.nackAt : tc.nackAt+1]
				}
			}
			wantAnswers(t, answers, ids[:tc.k], nacked, tc.code, tc.err)
			storedOnce(t, ts.store, "site-1", ids[:tc.k], ids[tc.k:])
			// Sent again as the agent sends what was not answered: all of
			// them, each stored once.
			resend, b := packedOps(t, conn, 0, min(tc.n, wire.MaxOpsPerStream), 512)
			wantAnswers(t, sendStream(t, c, b), resend, nil, 0, wire.CodeOK)
			storedOnce(t, ts.store, "site-1", resend, nil)
		})
	}
	if st := ts.srv.Stats(); st.InternalErrors != 0 {
		t.Errorf("%d internal errors", st.InternalErrors)
	}
}

func appendFrames(t *testing.T, b []byte, frames []wire.Frame, err error) []byte {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if b, err = hostile.Append(b, frames...); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpsPerStreamPackets sends 16 small ops per stream and counts the
// connection's packets: one write of the ops, one of the answers, so
// well under one packet per op (a stream per op takes two,
// TestSmallOpsTwoPacketsEach).
func TestOpsPerStreamPackets(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, wire.CapOpsPerStream)
	const streams, per = 10, 16
	send := func(s int) {
		t.Helper()
		ids, b := packedOps(t, 0, s*per, per, 512)
		wantAnswers(t, sendStream(t, c, b), ids, nil, 0, wire.CodeOK)
	}
	send(0) // the first stream settles the connection's state
	before := c.Conn.ConnectionStats()
	for s := 1; s <= streams; s++ {
		send(s)
	}
	after := c.Conn.ConnectionStats()
	sent, received := after.PacketsSent-before.PacketsSent, after.PacketsReceived-before.PacketsReceived
	perOp := float64(sent+received) / (streams * per)
	t.Logf("%d ops on %d streams: %d packets sent, %d received, %.2f per op", streams*per, streams, sent, received, perOp)
	// 16 ops of 512 B and their frames are 9.3 KiB: 7-8 full packets
	// out (0.47 per op from their bytes alone), the answers and ACKs
	// 2-3 more: 0.6-0.8 per op. The bound leaves room for probes, and
	// for the race detector's slower answers.
	bound := 0.9
	if raceEnabled {
		bound = 1.0
	}
	if perOp > bound {
		t.Errorf("%.2f packets per op with %d ops per stream, want at most %.1f", perOp, per, bound)
	}
}

// TestOpsPerStreamMemory: a hostile agent sends 64 ops of 64 KiB on many
// streams of several connections at once to a core whose frame memory is
// small. The ops held for their stream count against it: the core never
// holds more than its bound (and holds more than one stream's ops, which
// an uncounted core would not show), refuses what does not fit busy
// (NACK; a DATA frame refused at its header ends its stream, the ops
// after it unanswered) and stores the rest once; every byte is given
// back.
func TestOpsPerStreamMemory(t *testing.T) {
	const bound = MinConnFrameMemory
	ts := startServer(t, Config{}, func(c *ServerConfig) { c.MaxConnFrameMemory, c.MaxFrameMemory = bound, bound })
	const conns, streams = 3, 12
	size := wire.MaxPackedOpData - 64 // its DATA, with the chunk's mode byte, within the limit
	done := make(chan error, conns*streams)
	answers := make([][]wire.Frame, conns*streams)
	ids := make([][]edgesync.OpID, conns*streams)
	for cn := range conns {
		c := ts.dial(t, wire.CapOpsPerStream)
		for k := range streams {
			s := cn*streams + k
			var b []byte
			ids[s], b = packedOps(t, 1+cn, k*wire.MaxOpsPerStream, wire.MaxOpsPerStream, size)
			go func() {
				var err error
				answers[s], err = streamAnswers(c, 30*time.Second, func(str *quic.Stream) error {
					_, err := str.Write(b)
					return err
				})
				done <- err
			}()
		}
	}
	for s := range conns * streams {
		if err := testutil.Returned(t, done, 60*time.Second, fmt.Sprintf("stream %d", s)); err != nil {
			t.Fatal(err)
		}
	}
	var acked, busy []edgesync.OpID
	for s := range conns * streams {
		// A stream whose state has no room is answered ERROR busy alone:
		// none of its ops is read.
		if len(answers[s]) == 1 && answers[s][0].Type() == wire.FrameError {
			e := answers[s][0].(*wire.Error)
			if e.Code != wire.CodeBusy {
				t.Fatalf("stream %d: answered %s, want ERROR busy", s, describe(answers[s]))
			}
			busy = append(busy, ids[s]...)
			continue
		}
		// A DATA frame refused busy at its header ends the stream: its
		// body is not read. The ops after it are unanswered.
		if len(answers[s]) == 0 || len(answers[s]) > wire.MaxOpsPerStream {
			t.Fatalf("stream %d: %d answers %s, want one per op up to the first refused", s, len(answers[s]), describe(answers[s]))
		}
		busy = append(busy, ids[s][len(answers[s]):]...)
		for i, f := range answers[s] {
			switch f := f.(type) {
			case *wire.Ack:
				acked = append(acked, ids[s][i])
			case *wire.Nack:
				if f.Code != wire.CodeBusy {
					t.Fatalf("stream %d op %d: NACK %s %q, want busy", s, i, f.Code, f.Msg)
				}
				busy = append(busy, ids[s][i])
			default:
				t.Fatalf("stream %d op %d answered %s", s, i, f.Type())
			}
		}
	}
	st := ts.srv.Stats()
	t.Logf("%d ops acknowledged, %d refused busy; frame memory peak %d KiB of %d KiB", len(acked), len(busy), st.FrameMemoryPeak>>10, bound>>10)
	if st.FrameMemoryPeak > bound {
		t.Errorf("frames and ops in flight held %d bytes, the bound is %d", st.FrameMemoryPeak, bound)
	}
	if one := int64(wire.MaxOpsPerStream * size); st.FrameMemoryPeak < one {
		t.Errorf("frame memory peak %d bytes, less than one stream's ops (%d): are they counted?", st.FrameMemoryPeak, one)
	}
	storedOnce(t, ts.store, "site-1", acked, busy)
	testutil.WaitFor(t, 10*time.Second, "every byte of frame memory given back", func() bool { return ts.srv.Stats().FrameMemory == 0 })
	if st.InternalErrors != 0 {
		t.Errorf("%d internal errors", st.InternalErrors)
	}
}

// TestOpsPerStreamLargeOpAlone: an op of one large chunk, alone on its
// stream as the agent sends one over wire.MaxPackedOpData, needs no more
// of the connection's frame memory with the capability than without it.
// The packed path copied its plain bytes beside the frame buffer they
// were read into: 2 × 15 MiB against a 32 MiB connection, refused busy.
func TestOpsPerStreamLargeOpAlone(t *testing.T) {
	const size = 15 << 20
	for _, caps := range []wire.Capabilities{0, wire.CapOpsPerStream} {
		ts := startServer(t, Config{}, func(c *ServerConfig) { c.MaxConnFrameMemory = MinConnFrameMemory })
		c := ts.dial(t, caps)
		ids, b := packedOps(t, 1, 0, 1, size)
		answers := sendStream(t, c, b)
		if len(answers) != 1 {
			t.Fatalf("caps %v: answers %s, want one ACK", caps, describe(answers))
		}
		if a, ok := answers[0].(*wire.Ack); !ok || len(a.IDs) != 1 || a.IDs[0] != ids[0] {
			t.Fatalf("caps %v: a %d-byte op alone on its stream answered %s, want its ACK", caps, size, describe(answers))
		}
	}
}
