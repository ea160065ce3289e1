//go:build !linux

package testutil

import "testing"

// Tmpfs skips tb: mounting a tmpfs is for Linux only.
func Tmpfs(tb testing.TB, size int64) string {
	tb.Skip("skipped: a small tmpfs to fill needs Linux and root")
	return ""
}

// FillDisk skips tb: see Tmpfs.
func FillDisk(tb testing.TB, dir, name string, max int64) string {
	tb.Skip("skipped: filling a file system is tested on Linux only")
	return ""
}
