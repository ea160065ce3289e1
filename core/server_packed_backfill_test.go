package core

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/wire"
)

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
	ts := startServer(t, Config{}, nil)
	both := wire.CapOpsPerStream | wire.CapPackedBackfill
	if c := ts.dial(t, wire.CapPackedBackfill); c.Welcome.Caps.Has(wire.CapPackedBackfill) {
		t.Fatal("granted packed backfill to an agent that did not offer several ops per stream")
	}
	off := startServer(t, Config{}, func(c *ServerConfig) { c.DisablePackedBackfill = true })
	if c := off.dial(t, both); c.Welcome.Caps != c.Welcome.Caps&^wire.CapPackedBackfill || !c.Welcome.Caps.Has(wire.CapOpsPerStream) {
		t.Fatalf("with DisablePackedBackfill the core grants %b; want several ops per stream without packed backfill", c.Welcome.Caps)
	}

	t.Run("granted", func(t *testing.T) {
		c := ts.dial(t, both)
		if !c.Welcome.Caps.Has(both) {
			t.Fatalf("Welcome grants %b, want CapOpsPerStream and CapPackedBackfill", c.Welcome.Caps)
		}
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
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
