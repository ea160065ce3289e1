package core

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
)

// filledStore writes a store with a few keys and events and returns its path.
func filledStore(t *testing.T) string {
	t.Helper()
	s, path := openTest(t, Config{ChunkSize: 4096})
	for i := range 20 {
		d := payload(uint64(i), 10_000)
		kind, key := edgesync.StateOp, "k/"+string(rune('a'+i))
		if i%2 == 0 {
			kind = edgesync.EventOp
		}
		mustApply(t, s, "site-1", hdrFor(opID(uint64(i+1)), kind, key, d), d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// openNoPanic opens path and fails the test if Open panics.
func openNoPanic(t *testing.T, path string, cfg Config) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Open panicked: %v", r)
		}
	}()
	s, err := Open(path, cfg)
	if err == nil {
		_ = s.Close()
	}
	return err
}

func TestOpenNotADatabase(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"text":  []byte("hello, this is not a database\n"),
		"zeros": make([]byte, 64<<10),
		"junk":  payload(1, 64<<10),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := openNoPanic(t, p, Config{}); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: Open = %v, want ErrCorrupt", name, err)
		}
		after, _ := os.ReadFile(p)
		if !bytes.Equal(after, content) {
			t.Errorf("%s: Open modified a file it refused", name)
		}
	}
}

func TestOpenTruncated(t *testing.T) {
	path := filledStore(t)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, n := range []int{100, 4096, 8192, len(full) / 2, len(full) - 4096} {
		p := filepath.Join(t.TempDir(), "trunc.db")
		if err := os.WriteFile(p, full[:n], 0o600); err != nil {
			t.Fatal(err)
		}
		// A truncated file must be refused, or, if bbolt's meta pages
		// still describe a consistent prefix, open without panicking and
		// fail reads cleanly; VerifyOnOpen must catch the rest.
		err := openNoPanic(t, p, Config{VerifyOnOpen: true})
		if err == nil {
			// Only the unused tail bbolt preallocates was cut: everything
			// must still be there.
			checkFilled(t, p)
			continue
		}
		refused++
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d: Open = %v, want ErrCorrupt", n, err)
		}
	}
	if refused < 4 {
		t.Fatalf("only %d of 5 truncations refused", refused)
	}
}

// checkFilled verifies that the store at path holds what filledStore wrote.
func checkFilled(t *testing.T, path string) {
	t.Helper()
	s := openStore(t, path)
	for i := range 20 {
		want := payload(uint64(i), 10_000)
		if i%2 == 0 {
			_, o, err := s.EventData("site-1", uint64(i/2+1))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readAll(t, o), want) {
				t.Fatalf("event %d differs", i)
			}
			continue
		}
		if _, got := mustGet(t, s, "site-1", "k/"+string(rune('a'+i))); !bytes.Equal(got, want) {
			t.Fatalf("key %d differs", i)
		}
	}
}

func TestOpenForeignBolt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "outbox.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("ops"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	err = openNoPanic(t, p, Config{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("foreign bbolt file: %v, want ErrCorrupt", err)
	}
}

func setMeta(t *testing.T, path string, key, val []byte) {
	t.Helper()
	rawUpdate(t, path, func(tx *bolt.Tx) error { return tx.Bucket(bktMeta).Put(key, val) })
}

// rawUpdate changes the store file at path with bbolt itself, past the
// store's checks, as damage would.
func rawUpdate(t *testing.T, path string, f func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(f); err != nil {
		t.Fatal(err)
	}
}

// openStore opens the store at path; it closes when t ends.
func openStore(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenNewerFormat(t *testing.T) {
	path := filledStore(t)
	setMeta(t, path, keyFormat, u64b(FormatVersion+1))
	if err := openNoPanic(t, path, Config{}); !errors.Is(err, ErrVersion) {
		t.Fatalf("newer format: %v, want ErrVersion", err)
	}
	setMeta(t, path, keyFormat, []byte{1})
	if err := openNoPanic(t, path, Config{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("mangled format marker: %v, want ErrCorrupt", err)
	}
	setMeta(t, path, keyFormat, u64b(FormatVersion))
	setMeta(t, path, keyMagic, []byte("something else"))
	if err := openNoPanic(t, path, Config{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("wrong magic: %v, want ErrCorrupt", err)
	}
	setMeta(t, path, keyMagic, []byte(storeMagic))
	if err := openNoPanic(t, path, Config{}); err != nil {
		t.Fatalf("restored markers: %v", err)
	}
}

func TestOpenCorruptRecords(t *testing.T) {
	path := filledStore(t)
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bktAgents).Bucket([]byte("site-1")).Bucket(bktKeys).Put([]byte("k/b"), []byte{1, 2, 3})
	})
	s := openStore(t, path)
	if _, _, err := s.Get("site-1", "k/b"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of a damaged record: %v, want ErrCorrupt", err)
	}
	if _, err := s.Keys("site-1", "", 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Keys over a damaged record: %v, want ErrCorrupt", err)
	}
	// The other keys are still readable.
	if _, got := mustGet(t, s, "site-1", "k/d"); !bytes.Equal(got, payload(3, 10_000)) {
		t.Fatal("undamaged key unreadable")
	}
}

func TestOpenFlippedPages(t *testing.T) {
	path := filledStore(t)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Damage every page after the two meta pages in turn, a few bytes in
	// the page header; Open with verification must refuse or succeed, but
	// never panic, and a refused open is ErrCorrupt.
	refused := 0
	for off := 2 * 4096; off+16 < len(full); off += 3 * 4096 { // every third page keeps it quick
		bad := bytes.Clone(full)
		for i := range 8 {
			bad[off+i] ^= 0xA5
		}
		p := filepath.Join(t.TempDir(), "flip.db")
		if err := os.WriteFile(p, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		readDamaged(t, p)
		err := openNoPanic(t, p, Config{VerifyOnOpen: true})
		if err != nil {
			refused++
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("page at %d damaged: Open = %v, want ErrCorrupt", off, err)
			}
		}
	}
	if refused == 0 {
		t.Fatal("no damaged page was detected")
	}
}

// TestFaultBecomesError truncates the file under an open store: reads
// through bbolt's memory map then fault (SIGBUS), which must come back as
// ErrCorrupt instead of killing the process.
func TestFaultBecomesError(t *testing.T) {
	path := filledStore(t)
	s := openStore(t, path)
	if err := os.Truncate(path, 8192); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := 1; i < 20; i += 2 {
		_, o, err := s.Get("site-1", "k/"+string(rune('a'+i)))
		if err == nil {
			_, err = o.ReadAt(make([]byte, 10_000), 0)
		}
		if err != nil {
			failed++
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read after truncation: %v, want ErrCorrupt", err)
			}
		}
	}
	if failed == 0 {
		t.Fatal("no read noticed the truncated file")
	}
}

// readDamaged opens a damaged store without verification and reads
// everything: each read must return the right data or an error, never
// wrong data, and nothing may panic.
func readDamaged(t *testing.T, path string) {
	t.Helper()
	s, err := Open(path, Config{})
	if err != nil {
		return
	}
	defer s.Close()
	for i := range 20 {
		want := payload(uint64(i), 10_000)
		var o *Object
		if i%2 == 0 {
			_, o, err = s.EventData("site-1", uint64(i/2+1))
		} else {
			_, o, err = s.Get("site-1", "k/"+string(rune('a'+i)))
		}
		if err != nil {
			continue
		}
		got, err := io.ReadAll(o)
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("op %d: sequential read returned damaged data without an error", i)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotFound) {
			t.Fatalf("op %d: read of damaged store: %v", i, err)
		}
	}
	_, _ = s.Keys("site-1", "", 0)
	_, _ = s.Events("site-1", 0, 0)
	_, _ = s.Stats()
}

func TestReadDetectsDamagedChunk(t *testing.T) {
	path := filledStore(t)
	damageFirstBlob(t, path)
	s := openStore(t, path)
	// The first blob belongs to the first op, an event.
	_, o, err := s.EventData("site-1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(o); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("reading a damaged chunk: %v, want ErrCorrupt", err)
	}
}
