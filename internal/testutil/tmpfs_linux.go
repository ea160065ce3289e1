package testutil

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// Tmpfs mounts a tmpfs of size bytes on a fresh directory and returns it,
// for a test of what a full disk does: writes there fail with ENOSPC once
// size is used. It is unmounted when tb ends. Mounting needs root (CI runs
// as root): without it the test is skipped with a message that says so.
func Tmpfs(tb testing.TB, size int64) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("skipped: mounting a small tmpfs to fill needs root (CI runs the tests as root)")
	}
	dir := tb.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		if err == syscall.EPERM {
			tb.Skipf("skipped: mounting a tmpfs on %s is not permitted here (a container without CAP_SYS_ADMIN): %v", dir, err)
		}
		tb.Fatalf("mount a tmpfs of %d bytes on %s: %v", size, dir, err)
	}
	// Registered after TempDir's removal, so it runs first.
	tb.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			tb.Errorf("unmount the tmpfs on %s: %v", dir, err)
		}
	})
	return dir
}

// FillDisk writes a file named name in dir until the file system has no
// room left (ENOSPC), in blocks of 64 KiB, and returns its path; removing
// it makes the room again. It fails tb if dir's file system does not fill
// within max bytes.
func FillDisk(tb testing.TB, dir, name string, max int64) string {
	tb.Helper()
	path := dir + "/" + name
	f, err := os.Create(path)
	if err != nil {
		tb.Fatalf("fill %s: %v", dir, err)
	}
	defer f.Close()
	block := make([]byte, 64<<10)
	for n := int64(0); n < max; n += int64(len(block)) {
		if _, err := f.Write(block); err != nil {
			if pe, ok := err.(*os.PathError); ok && pe.Err == syscall.ENOSPC {
				return path
			}
			tb.Fatalf("fill %s: %v", dir, err)
		}
	}
	tb.Fatalf("fill %s: still room after %d bytes", dir, max)
	return path
}
