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
	ts := startServer(t, Config{}, nil)
	if c := ts.dial(t, 0); c.Welcome.Caps.Has(wire.CapSummariesPerStream) {
		t.Fatal("granted several summaries per stream to an agent that did not offer it")
	}
	off := startServer(t, Config{}, func(c *ServerConfig) { c.DisablePackedBackfill = true })
	if c := off.dial(t, wire.CapSummariesPerStream); c.Welcome.Caps.Has(wire.CapSummariesPerStream) {
		t.Fatal("granted several summaries per stream with DisablePackedBackfill")
	}
	c := ts.dial(t, wire.CapSummariesPerStream)
	if !c.Welcome.Caps.Has(wire.CapSummariesPerStream) {
		t.Fatalf("Welcome grants %b, want CapSummariesPerStream", c.Welcome.Caps)
	}

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
