package storetest

import (
	"errors"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
)

// testReleasePartial: a partial op whose receive ended (the server's
// ReleasePartial) counts only the bytes it holds against the quota, so
// that the declared bytes that never came do not lock the agent out; a
// write to it counts what it holds; received again it reserves its
// declared size once more, refused past the quota; its commit ends what
// it reserves. Small ops (held in memory by some stores) and staged ones.
func testReleasePartial(t *testing.T, h Harness) {
	for _, tc := range []struct {
		name      string
		inlineMax int64
	}{{"inline", 64 << 10}, {"staged", 100}} {
		t.Run(tc.name, func(t *testing.T) {
			s := h.Open(t, core.Config{Quota: 1000, ChunkSize: 100, InlineMax: tc.inlineMax})
			rel, ok := s.(core.PartialReleaser)
			if !ok {
				t.Skip("the store does not implement core.PartialReleaser")
			}
			reserved := func(want int64, when string) {
				t.Helper()
				if st := agentStats(t, s, "a"); st.Reserved != want {
					t.Fatalf("%s: %d bytes reserved, want %d", when, st.Reserved, want)
				}
			}
			if err := rel.ReleasePartial("a", OpID(9)); !errors.Is(err, core.ErrNotFound) {
				t.Fatalf("release of no partial: %v, want ErrNotFound", err)
			}
			d := Payload(1, 800)
			hd := Header(OpID(1), edgesync.EventOp, "log", d)
			if _, _, err := s.BeginPartial("a", hd); err != nil {
				t.Fatal(err)
			}
			if err := s.WritePartial("a", hd.OpID, 0, d[:300]); err != nil {
				t.Fatal(err)
			}
			reserved(800, "received")
			for range 2 { // a second release changes nothing
				if err := rel.ReleasePartial("a", hd.OpID); err != nil {
					t.Fatalf("release: %v", err)
				}
				reserved(300, "released")
			}
			// A write to the released partial counts what it holds.
			if err := s.WritePartial("a", hd.OpID, 300, d[300:400]); err != nil {
				t.Fatal(err)
			}
			reserved(400, "written after its release")
			// The room it gave back takes another op.
			other := Payload(2, 500)
			ho := Header(OpID(2), edgesync.EventOp, "log", other)
			if _, _, err := s.BeginPartial("a", ho); err != nil {
				t.Fatalf("an op in the room a released partial gave back: %v", err)
			}
			reserved(900, "another op begun")
			// Received again, it reserves its declared size: past the quota now.
			if _, _, err := s.BeginPartial("a", hd); !errors.Is(err, core.ErrQuota) {
				t.Fatalf("released partial received again past the quota: %v, want ErrQuota", err)
			}
			if err := s.DiscardPartial("a", ho.OpID); err != nil {
				t.Fatal(err)
			}
			reserved(400, "the other discarded")
			held, _, err := s.BeginPartial("a", hd)
			if err != nil || held != 400 {
				t.Fatalf("released partial received again: held %d, %v; want 400", held, err)
			}
			reserved(800, "received again")
			if err := s.WritePartial("a", hd.OpID, 400, d[400:]); err != nil {
				t.Fatal(err)
			}
			if res, err := s.CommitPartial("a", hd.OpID); err != nil || res.Duplicate {
				t.Fatalf("commit: %+v, %v", res, err)
			}
			reserved(0, "committed")
			if st := agentStats(t, s, "a"); st.Bytes != 800 {
				t.Fatalf("%d bytes stored, want 800", st.Bytes)
			}
			if err := rel.ReleasePartial("a", hd.OpID); !errors.Is(err, core.ErrNotFound) {
				t.Fatalf("release after the commit: %v, want ErrNotFound", err)
			}
		})
	}
}
