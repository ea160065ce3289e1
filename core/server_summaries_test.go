package core

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/wire"
)

// summaryFrames returns n summaries (op IDs hostile.OpID(conn, i), keys
// "sum/<conn>/<i>", producer bytes of size each) and their frames in one
// buffer, as the agent writes a stream of several.
func summaryFrames(t *testing.T, conn, n, size int) ([]edgesync.OpID, []byte) {
	t.Helper()
	var ids []edgesync.OpID
	var frames []wire.Frame
	for i := range n {
		id := hostile.OpID(conn, i)
		pl := payload(uint64(i), 1024)
		frames = append(frames, &wire.Summary{ID: id, Key: fmt.Sprintf("sum/%d/%d", conn, i), Size: uint64(len(pl)), Hash: sha256.Sum256(pl),
			Time: time.Unix(1_800_000_000, 0), Producer: bytes.Repeat([]byte{byte(i)}, size)})
		ids = append(ids, id)
	}
	return ids, appendFrames(t, nil, frames, nil)
}

// summariesStored checks that the summaries of ids (keys "sum/<conn>/<i>")
// are stored and those of absent are not.
func summariesStored(t *testing.T, s *Store, conn int, ids, absent []edgesync.OpID) {
	t.Helper()
	for i, id := range append(append([]edgesync.OpID{}, ids...), absent...) {
		sum, err := s.Summary("site-1", fmt.Sprintf("sum/%d/%d", conn, i))
		if stored := err == nil && sum.OpID == id; stored != (i < len(ids)) {
			t.Errorf("summary %d (op %x): stored %v (%v), want %v", i, id[14:], stored, err, i < len(ids))
		}
	}
}

// TestSummariesPerStream: the core grants CapSummariesPerStream when the
// agent offers it (not with DisablePackedBackfill); granted, a stream of
// several SUMMARY frames is stored and answered in order, each once; a
// 65th summary or an op ID twice is NACKed bad-request and ends the
// stream, another frame ends it with ERROR bad-request (docs/wire.md,
// "Several summaries per stream").
func TestSummariesPerStream(t *testing.T) {
	ts, c := granted(t, wire.CapSummariesPerStream, wire.CapSummariesPerStream)

	ids, b := summaryFrames(t, 1, 16, 20)
	wantAnswers(t, sendStream(t, c, b), ids, nil, 0, wire.CodeOK)
	summariesStored(t, ts.store, 1, ids, nil)
	wantAnswers(t, sendStream(t, c, b), ids, nil, 0, wire.CodeOK) // sent again: the same answers
	summariesStored(t, ts.store, 1, ids, nil)

	// 64 summaries of the most producer bytes: each is stored as it is
	// read, its frame's buffer reused for the next.
	ids, b = summaryFrames(t, 2, wire.MaxOpsPerStream, wire.MaxSummaryBytes)
	wantAnswers(t, sendStream(t, c, b), ids, nil, 0, wire.CodeOK)
	summariesStored(t, ts.store, 2, ids, nil)

	ids, b = summaryFrames(t, 3, wire.MaxOpsPerStream+2, 20)
	wantAnswers(t, sendStream(t, c, b), ids[:wire.MaxOpsPerStream], ids[wire.MaxOpsPerStream:wire.MaxOpsPerStream+1], wire.CodeBadRequest, wire.CodeOK)
	summariesStored(t, ts.store, 3, ids[:wire.MaxOpsPerStream], ids[wire.MaxOpsPerStream:])

	// An op ID twice: the second is refused, nothing after it is read.
	ids, b = summaryFrames(t, 4, 3, 20)
	_, after := summaryFrames(t, 5, 1, 20)
	dup := appendFrames(t, nil, []wire.Frame{&wire.Summary{ID: ids[1], Key: "sum/4/1", Size: 1, Time: time.Unix(1_800_000_000, 0)}}, nil)
	answers := sendStream(t, c, append(append(b, dup...), after...))
	wantAnswers(t, answers, ids, ids[1:2], wire.CodeBadRequest, wire.CodeOK)
	if sum, err := ts.store.Summary("site-1", "sum/5/0"); err == nil {
		t.Errorf("the summary after the repeated op ID was stored: %+v", sum)
	}

	// A frame that is no SUMMARY after summaries: ERROR bad-request after
	// the answers of those read.
	ids, b = summaryFrames(t, 6, 4, 20)
	frames, err := hostile.WholeOp(hostile.OpID(6, 9), "ev", payload(9, 100))
	wantAnswers(t, sendStream(t, c, appendFrames(t, b, frames, err)), ids, nil, 0, wire.CodeBadRequest)
	summariesStored(t, ts.store, 6, ids, nil)
	storedOnce(t, ts.store, "site-1", nil, []edgesync.OpID{hostile.OpID(6, 9)})

	if st := ts.srv.Stats(); st.InternalErrors != 0 {
		t.Errorf("%d internal errors", st.InternalErrors)
	}
}

// backfillOps returns n whole event ops, one key each ("bf/<conn>/<i>"),
// with OpHeader.Summarized set on those summarized says, and their frames
// in one buffer, as the agent writes a pack.
func backfillOps(t *testing.T, conn, n int, summarized func(i int) bool) ([]edgesync.OpID, []byte) {
	t.Helper()
	var ids []edgesync.OpID
	var b []byte
	for i := range n {
		id := hostile.OpID(conn, i)
		frames, err := hostile.WholeOp(id, fmt.Sprintf("bf/%d/%d", conn, i), payload(uint64(i), 700))
		if err != nil {
			t.Fatal(err)
		}
		frames[0].(*wire.OpHeader).Summarized = summarized(i)
		b = appendFrames(t, b, frames, nil)
		ids = append(ids, id)
	}
	return ids, b
}

// TestPackedBackfill: the core grants CapPackedBackfill beside
// CapOpsPerStream only; granted, a stream of several ops whose summaries
// went first is stored as any pack, each op once, and supersedes each
// summary. Not granted, such a stream is refused bad-request at its
// second op (the first is answered), while a summarized op alone on its
// stream goes as before (docs/wire.md, "Several ops per stream").
func TestPackedBackfill(t *testing.T) {
	both := wire.CapOpsPerStream | wire.CapPackedBackfill
	ts, c := granted(t, wire.CapPackedBackfill, both)
	if c := ts.dial(t, wire.CapPackedBackfill); c.Welcome.Caps.Has(wire.CapPackedBackfill) {
		t.Fatal("granted packed backfill to an agent that did not offer several ops per stream")
	}

	t.Run("granted", func(t *testing.T) {
		ids, b := backfillOps(t, 1, 16, func(i int) bool { return i%2 == 0 })
		for i, id := range ids {
			if i%2 != 0 {
				continue
			}
			pl := payload(uint64(i), 700)
			sum := &wire.Summary{ID: id, Key: fmt.Sprintf("bf/1/%d", i), Size: uint64(len(pl)), Hash: sha256.Sum256(pl), Time: time.Now(), Producer: []byte(`{"n":1}`)}
			wantAnswers(t, sendStream(t, c, appendFrames(t, nil, []wire.Frame{sum}, nil)), ids[i:i+1], nil, 0, wire.CodeOK)
		}
		wantAnswers(t, sendStream(t, c, b), ids, nil, 0, wire.CodeOK)
		storedOnce(t, ts.store, "site-1", ids, nil)
		for i := 0; i < len(ids); i += 2 {
			sum, err := ts.store.Summary("site-1", fmt.Sprintf("bf/1/%d", i))
			if err != nil || !sum.Superseded {
				t.Fatalf("summary of op %d: %+v, %v; want it superseded by the op's full data", i, sum, err)
			}
		}
		// Sent again (answers lost): acknowledged, stored once.
		wantAnswers(t, sendStream(t, c, b), ids, nil, 0, wire.CodeOK)
		storedOnce(t, ts.store, "site-1", ids, nil)
		// The pack's rules hold for summarized ops too: an op ID twice.
		dup, b := backfillOps(t, 2, 3, func(int) bool { return true })
		frames, err := hostile.WholeOp(dup[0], "bf/2/0", payload(0, 700))
		if err == nil {
			frames[0].(*wire.OpHeader).Summarized = true
		}
		wantAnswers(t, sendStream(t, c, appendFrames(t, b, frames, err)), dup, dup[:1], wire.CodeBadRequest, wire.CodeOK)
		storedOnce(t, ts.store, "site-1", dup, nil)
	})

	t.Run("not granted", func(t *testing.T) {
		c := ts.dial(t, wire.CapOpsPerStream)
		if c.Welcome.Caps.Has(wire.CapPackedBackfill) {
			t.Fatalf("Welcome grants %b to an agent that offered no packed backfill", c.Welcome.Caps)
		}
		for _, tc := range []struct {
			name       string
			summarized int // the op with Summarized set
			nacked     int // the op refused bad-request, the stream's last answer
		}{
			{"a later op summarized", 4, 4},
			{"the first op summarized", 0, 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				conn := 10 + tc.summarized
				ids, b := backfillOps(t, conn, 8, func(i int) bool { return i == tc.summarized })
				answers := sendStream(t, c, b)
				wantAnswers(t, answers, ids[:tc.nacked], ids[tc.nacked:tc.nacked+1], wire.CodeBadRequest, wire.CodeOK)
				if n := answers[len(answers)-1].(*wire.Nack); !containsAll(n.Msg, "CapPackedBackfill", "Summarized") {
					t.Errorf("NACK %q; want it to name OpHeader.Summarized and the capability", n.Msg)
				}
				storedOnce(t, ts.store, "site-1", ids[:tc.nacked], ids[tc.nacked:])
				// Each alone on its stream, as an agent without the
				// capability sends them: every one stored once.
				for i, id := range ids[tc.nacked:] {
					frames, err := hostile.WholeOp(id, fmt.Sprintf("bf/%d/%d", conn, tc.nacked+i), payload(uint64(tc.nacked+i), 700))
					if err == nil {
						frames[0].(*wire.OpHeader).Summarized = tc.nacked+i == tc.summarized
					}
					wantAnswers(t, sendStream(t, c, appendFrames(t, nil, frames, err)), ids[tc.nacked+i:tc.nacked+i+1], nil, 0, wire.CodeOK)
				}
				storedOnce(t, ts.store, "site-1", ids, nil)
			})
		}
	})
	if st := ts.srv.Stats(); st.InternalErrors != 0 {
		t.Errorf("%d internal errors", st.InternalErrors)
	}
}

// containsAll reports whether s contains each of subs.
func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !bytes.Contains([]byte(s), []byte(sub)) {
			return false
		}
	}
	return true
}

// granted checks that a core grants capability cp to an agent that
// offers offer, and neither to one that does not offer it nor with
// DisablePackedBackfill, which leaves the rest of offer granted. It
// returns the core and the agent's connection.
func granted(t *testing.T, cp, offer wire.Capabilities) (*testServer, *hostile.Client) {
	t.Helper()
	ts := startServer(t, Config{}, nil)
	if c := ts.dial(t, offer&^cp); c.Welcome.Caps.Has(cp) {
		t.Fatalf("granted %b to an agent that offered %b", cp, offer&^cp)
	}
	off := startServer(t, Config{}, func(c *ServerConfig) { c.DisablePackedBackfill = true })
	if c := off.dial(t, offer); c.Welcome.Caps.Has(cp) || !c.Welcome.Caps.Has(offer&^cp) {
		t.Fatalf("with DisablePackedBackfill the core grants %b to an offer of %b; want %b without %b", c.Welcome.Caps, offer, offer&^cp, cp)
	}
	c := ts.dial(t, offer)
	if !c.Welcome.Caps.Has(offer) {
		t.Fatalf("Welcome grants %b, want %b", c.Welcome.Caps, offer)
	}
	return ts, c
}
