package testutil

import (
	"bytes"
	"math/rand/v2"
	"os"
	"testing"
)

// Damage inverts n bytes of the file at path, starting off bytes into the
// one place where needle (bytes a test stored, e.g. a random payload) sits,
// and returns the file offset it changed. It writes in place (pwrite), as a
// failing disk would, so it also damages a file a running process has
// mapped. The test fails if needle is not in the file exactly once.
func Damage(tb testing.TB, path string, needle []byte, off, n int) int64 {
	tb.Helper()
	at := find(tb, path, needle) + int64(off)
	invert(tb, path, at, n)
	return at
}

// DamagePageHeader inverts the 16-byte header of the bbolt page (of
// pageSize bytes) where needle starts: bbolt can no longer read that page.
func DamagePageHeader(tb testing.TB, path string, needle []byte, pageSize int64) {
	tb.Helper()
	invert(tb, path, find(tb, path, needle)/pageSize*pageSize, 16)
}

// invert inverts n bytes of the file at path from offset at, in place.
func invert(tb testing.TB, path string, at int64, n int) {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	bad := make([]byte, n)
	if _, err := f.ReadAt(bad, at); err != nil {
		tb.Fatal(err)
	}
	for i := range bad {
		bad[i] ^= 0xff
	}
	if _, err := f.WriteAt(bad, at); err != nil {
		tb.Fatal(err)
	}
}

func find(tb testing.TB, path string, needle []byte) int64 {
	tb.Helper()
	file, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	at := bytes.Index(file, needle)
	if at < 0 || bytes.Contains(file[at+1:], needle) {
		tb.Fatalf("the bytes to damage are not in %s exactly once", path)
	}
	return int64(at)
}

// RandomBytes returns n random bytes made from seed: data that occurs
// nowhere else in a file, so that Damage can find it, and that no codec
// compresses.
func RandomBytes(seed uint64, n int) []byte {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	return b
}
