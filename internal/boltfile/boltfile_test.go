package boltfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// boltFile writes a real bbolt database with a few hundred KiB of data and
// returns its bytes.
func boltFile(t *testing.T) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "src.db")
	db, err := bolt.Open(p, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for j := range 50 {
				if err := b.Put(fmt.Appendf(nil, "k%d-%d", i, j), make([]byte, 1000)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func write(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.db")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pageSize is the page size meta page 0 of file says.
func pageSize(file []byte) int { return int(binary.LittleEndian.Uint32(file[pageHeader+8:])) }

// used is the bytes the newest meta page of file says the data fills.
func used(t *testing.T, file []byte) int {
	t.Helper()
	m, ok := parseMeta(file)
	if m1, ok1 := parseMeta(file[pageSize(file):]); ok1 && (!ok || m1.txid > m.txid) {
		m, ok = m1, true
	}
	if !ok {
		t.Fatal("no valid meta page in the test's own database")
	}
	return int(m.hwm) * int(m.pageSize)
}

// setMeta changes the uint64 at off in meta page i's record and fixes the
// page's checksum, as a writer that believed it would.
func setMeta(file []byte, i, off int, v uint64) {
	r := file[i*pageSize(file)+pageHeader:]
	binary.LittleEndian.PutUint64(r[off:], v)
	h := fnv.New64a()
	h.Write(r[:metaSumSpan])
	binary.LittleEndian.PutUint64(r[metaSumSpan:], h.Sum64())
}

// passes checks that Check passes the file at path, and that bbolt then
// opens it and reads every key of it without error; what names the file.
func passes(t *testing.T, path, what string) {
	t.Helper()
	if err := Check(path); err != nil {
		t.Fatalf("%s: Check = %v, want nil", what, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("%s: bbolt on a file Check passed: %v", what, err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("b")).ForEach(func(_, _ []byte) error { return nil })
	})
	if err != nil {
		t.Fatalf("%s: bbolt reading a file Check passed: %v", what, err)
	}
}

func TestCheckPasses(t *testing.T) {
	if err := Check(filepath.Join(t.TempDir(), "missing.db")); err != nil {
		t.Errorf("missing file: %v, want nil (bbolt creates it)", err)
	}
	if err := Check(write(t, nil)); err != nil {
		t.Errorf("empty file: %v, want nil (bbolt initialises it)", err)
	}
	passes(t, write(t, boltFile(t)), "a sound database")
}

func TestCheckTruncated(t *testing.T) {
	full := boltFile(t)
	ps, hwm := pageSize(full), used(t, full)
	for _, n := range []int{1, 100, ps - 1, ps, 2 * ps, 3 * ps, hwm / 2, hwm - ps, hwm - 1} {
		err := Check(write(t, full[:n]))
		if !errors.Is(err, ErrDamaged) {
			t.Errorf("truncated to %d of %d bytes: %v, want ErrDamaged", n, hwm, err)
		}
	}
	// Cutting only the tail bbolt preallocated past the data loses nothing.
	passes(t, write(t, full[:hwm]), "cut to the high water mark")
}

func TestCheckGarbage(t *testing.T) {
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i*31 + i>>9)
	}
	if err := Check(write(t, garbage)); !errors.Is(err, ErrDamaged) {
		t.Errorf("garbage: %v, want ErrDamaged", err)
	}
}

// A damaged first meta page is not fatal: bbolt uses the second, and so
// does Check, on the same file.
func TestCheckSecondMeta(t *testing.T) {
	file := boltFile(t)
	file[pageHeader+20] ^= 0xFF // inside meta 0's checksummed record
	passes(t, write(t, file), "meta 0 damaged, meta 1 sound")
}

// A meta page with a good checksum that points past the data is refused:
// bbolt would fault reading the page it names.
func TestCheckPointsPastData(t *testing.T) {
	for _, c := range []struct {
		name string
		off  int
	}{{"root", 16}, {"freelist", 32}, {"high water mark", 40}} {
		file := boltFile(t)
		for i := range 2 {
			setMeta(file, i, c.off, 1<<30)
		}
		if err := Check(write(t, file)); !errors.Is(err, ErrDamaged) {
			t.Errorf("%s past the data: %v, want ErrDamaged", c.name, err)
		}
	}
}
