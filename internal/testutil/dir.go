package testutil

import (
	"net"
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

// StaleSocket leaves a unix socket file at path whose listener is gone,
// as a process killed while it listened leaves one: nothing accepts on
// it.
func StaleSocket(tb testing.TB, path string) {
	tb.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		tb.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
}
