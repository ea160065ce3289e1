package core

import (
	"bytes"
	"testing"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
)

// TestFormat1OpensAndUpgrades opens a store of format 1, whose records
// keep every op's data in blob chunks, and checks that it reads as it
// was, that its marker is raised to 2 at Open, and that small ops stored
// afterwards hold their data in their records (inlineDataMax) while the
// old ones' chunks are freed when they are replaced. The format-1 file is
// written by the path that still writes records without data (begin,
// write, commit: the same bytes format 1 wrote), then marked format 1.
func TestFormat1OpensAndUpgrades(t *testing.T) {
	s, path := openTest(t, Config{})
	small, ev := payload(1, 100), payload(2, 200)
	old := []PartialHeader{hdrFor(opID(1), edgesync.StateOp, "k", small), hdrFor(opID(2), edgesync.EventOp, "log", ev)}
	for i, h := range old {
		d := [][]byte{small, ev}[i]
		if _, _, err := s.BeginPartial("a", h); err != nil {
			t.Fatal(err)
		}
		if err := s.WritePartial("a", h.OpID, 0, d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CommitPartial("a", h.OpID); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		a := tx.Bucket(bktAgents).Bucket([]byte("a"))
		if v, err := decodeVersion("k", a.Bucket(bktKeys).Get([]byte("k"))); err != nil || v.inline != nil || v.blob == 0 {
			t.Fatalf("format-1 version record: blob %d, %d bytes held in it, %v; want a blob and none", v.blob, len(v.inline), err)
		}
		return tx.Bucket(bktMeta).Put(keyFormat, u64b(1))
	})

	s = openStore(t, path)
	if err := s.viewTx(func(tx *bolt.Tx) error {
		if v := beU64(tx.Bucket(bktMeta).Get(keyFormat)); v != FormatVersion {
			t.Errorf("format marker after Open: %d, want %d", v, FormatVersion)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, o, err := s.Get("a", "k")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, o); !bytes.Equal(got, small) {
		t.Fatalf("format-1 version reads %d bytes, want the %d stored", len(got), len(small))
	}
	_, o, err = s.EventData("a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, o); !bytes.Equal(got, ev) {
		t.Fatalf("format-1 event reads %d bytes, want the %d stored", len(got), len(ev))
	}
	for i, h := range old {
		if res := mustApply(t, s, "a", h, [][]byte{small, ev}[i]); !res.Duplicate {
			t.Fatalf("format-1 op %s sent again: not a duplicate", h.OpID)
		}
	}
	if n := countChunks(t, s, "a"); n != 2 {
		t.Fatalf("%d chunks before the replace, want 2", n)
	}

	// A new small version replaces the old one: its data is in its record
	// and the old version's chunk is gone.
	d3 := payload(3, 300)
	mustApply(t, s, "a", hdrFor(opID(3), edgesync.StateOp, "k", d3), d3)
	if err := s.view("a", func(a *agentBucket) error {
		v, err := decodeVersion("k", a.keys.Get([]byte("k")))
		if err == nil && (v.blob != 0 || !bytes.Equal(v.inline, d3)) {
			t.Errorf("new small version: blob %d, %d bytes held in its record; want no blob and its %d bytes", v.blob, len(v.inline), len(d3))
		}
		if n := a.blobs.Stats().KeyN; n != 1 {
			t.Errorf("%d blob chunks after the replace, want 1 (the format-1 event's)", n)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	_, o, err = s.Get("a", "k")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, o); !bytes.Equal(got, d3) {
		t.Fatalf("new version reads %d bytes, want %d", len(got), len(d3))
	}
}

// TestInlineRecordDamage: a version record whose held data does not match
// its size is ErrCorrupt, as any damaged record.
func TestInlineRecordDamage(t *testing.T) {
	v := Version{Key: "k", OpID: opID(1), Size: 3, Version: 1, inline: []byte{1, 2, 3}}
	b := v.encode()
	if got, err := decodeVersion("k", b); err != nil || !bytes.Equal(got.inline, v.inline) {
		t.Fatalf("round trip: %v, %v", got.inline, err)
	}
	b[len(b)-4] = 9 // the length of the held data
	if _, err := decodeVersion("k", b); err == nil {
		t.Fatal("record with 3 bytes declared as 9: no error")
	}
	if _, err := decodeVersion("k", append(v.encode()[:len(b)-5], 7)); err == nil {
		t.Fatal("record with an unknown trailing field: no error")
	}
}

// TestApplyCollectsWhatItQueued: an apply that replaces a version too big
// to free in its own transaction deletes it afterwards (applyInline looks
// for garbage only when its transaction queued some).
func TestApplyCollectsWhatItQueued(t *testing.T) {
	s, _ := openTest(t, Config{InlineMax: 4 << 10, ChunkSize: 1 << 10})
	big, mid := payload(1, 10<<10), payload(2, 2<<10)
	mustApply(t, s, "a", hdrFor(opID(1), edgesync.StateOp, "k", big), big) // staged: 10 chunks
	if n := countChunks(t, s, "a"); n != 10 {
		t.Fatalf("%d chunks after a 10 KiB op, want 10", n)
	}
	mustApply(t, s, "a", hdrFor(opID(2), edgesync.StateOp, "k", mid), mid) // inline apply: 2 chunks
	if n := countChunks(t, s, "a"); n != 2 {
		t.Fatalf("%d chunks after the 10 KiB version was replaced by 2 KiB, want 2", n)
	}
}
