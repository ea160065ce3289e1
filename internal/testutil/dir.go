package testutil

import (
	"os"
	"testing"
)

// ShortTempDir returns a new directory with a short path, for unix
// sockets: a socket's path must fit in 108 bytes, and t.TempDir's, named
// after the test, often does not. It is removed when tb ends.
func ShortTempDir(tb testing.TB) string {
	tb.Helper()
	d, err := os.MkdirTemp("", "es")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}
