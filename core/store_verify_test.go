package core

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
)

// damageFirstBlob flips one bit in the middle of the first data chunk of
// site-1 (the first op's), through bbolt, as a bad sector would.
func damageFirstBlob(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		blobs := tx.Bucket(bktAgents).Bucket([]byte("site-1")).Bucket(bktBlobs)
		k, v := blobs.Cursor().First()
		bad := bytes.Clone(v)
		bad[len(bad)/2] ^= 0x40
		return blobs.Put(bytes.Clone(k), bad)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestReadAtNeverServesDamagedDataAsGood reads a damaged object the way
// `core get` and io.SectionReader do, with ReadAt in order: the read that
// reaches the end fails with ErrCorrupt and returns none of its bytes, a
// single ReadAt of the whole object returns nothing, and every later read
// of the object fails too.
func TestReadAtNeverServesDamagedDataAsGood(t *testing.T) {
	path := filledStore(t)
	damageFirstBlob(t, path)
	s, err := Open(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, o, err := s.EventData("site-1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(io.NewSectionReader(o, 0, o.Size())); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading a damaged object through a SectionReader: %v, want ErrCorrupt", err)
	}
	if n, err := o.ReadAt(make([]byte, 100), o.Size()-100); n != 0 || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading its end again: n=%d err=%v, want 0 and ErrCorrupt", n, err)
	}
	_, whole, _ := s.EventData("site-1", 1)
	buf := make([]byte, whole.Size())
	if n, err := whole.ReadAt(buf, 0); n != 0 || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("one ReadAt of the whole damaged object: n=%d err=%v, want 0 and ErrCorrupt", n, err)
	}
	// The other objects are intact and read in full.
	_, ok, _ := s.Get("site-1", "k/b")
	if got, err := io.ReadAll(io.NewSectionReader(ok, 0, ok.Size())); err != nil || !bytes.Equal(got, payload(1, 10_000)) {
		t.Fatalf("an intact object: %v", err)
	}
}

// TestReadAtConcurrentAndEmpty reads an intact object with ReadAt from
// several goroutines at once, in pieces, and an empty one.
func TestReadAtConcurrentAndEmpty(t *testing.T) {
	s, _ := openTest(t, Config{ChunkSize: 4096})
	data := payload(7, 100_000)
	mustApply(t, s, "site-1", hdrFor(opID(1), edgesync.StateOp, "big", data), data)
	mustApply(t, s, "site-1", hdrFor(opID(2), edgesync.StateOp, "empty", nil), nil)
	_, o, err := s.Get("site-1", "big")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			piece := 1000 + 777*g
			got, err := io.ReadAll(io.NewSectionReader(o, 0, o.Size()))
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("goroutine %d: %v", g, err)
			}
			buf := make([]byte, piece)
			for off := int64(0); off < o.Size(); off += int64(piece) {
				n, err := o.ReadAt(buf, off)
				if (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], data[off:off+int64(n)]) {
					t.Errorf("goroutine %d at %d: %v", g, off, err)
					return
				}
			}
		})
	}
	wg.Wait()
	_, e, err := s.Get("site-1", "empty")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.ReadAt(make([]byte, 10), 0); n != 0 || err != io.EOF {
		t.Fatalf("ReadAt of an empty object: n=%d err=%v, want 0, EOF", n, err)
	}
}
