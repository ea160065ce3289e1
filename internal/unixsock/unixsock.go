package unixsock

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Errors of Listen.
var (
	// ErrInUse means a process accepts connections on the socket path.
	ErrInUse = errors.New("socket in use")
	// ErrNotSocket means the path names a file that is not a unix socket;
	// it is never removed.
	ErrNotSocket = errors.New("not a socket")
)

// Mode is the permission of every socket Listen creates: the owner only.
const Mode fs.FileMode = 0o600

// dialTimeout bounds the check for a live listener on an existing socket.
const dialTimeout = time.Second

// beforeChmod, when set by a test, runs while the socket is bound under its
// temporary name with the umask's mode, before it is made private.
var beforeChmod func(tmp string)

// Listener is a unix socket listener of mode 0600 that removes its socket
// file on Close.
type Listener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo // the socket as created, to tell it from a successor
	once sync.Once
	err  error
}

// Listen listens on a unix socket at path that only the owner can
// connect to. It creates path's directory (mode 0700) if missing, replaces a
// stale socket, and refuses a live socket (ErrInUse) or another kind of
// file (ErrNotSocket).
func Listen(path string) (*Listener, error) {
	if err := clearStale(path); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	// The temporary directory is private from birth (MkdirTemp makes it
	// 0700): whatever mode the socket gets from the umask, nobody else can
	// reach it there.
	tmpDir, err := os.MkdirTemp(dir, ".sock-")
	if err != nil {
		return nil, fmt.Errorf("socket temporary directory: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	tmp := filepath.Join(tmpDir, "s")
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	// The file is unlinked by Close below, under its final name.
	ul.SetUnlinkOnClose(false)
	fail := func(err error) (*Listener, error) {
		ul.Close()
		return nil, err
	}
	if beforeChmod != nil {
		beforeChmod(tmp)
	}
	if err := os.Chmod(tmp, Mode); err != nil {
		return fail(fmt.Errorf("socket mode: %w", err))
	}
	fi, err := os.Lstat(tmp)
	if err != nil {
		return fail(fmt.Errorf("socket: %w", err))
	}
	// A hard link puts the socket in place only if nothing is there: a
	// rename would silently replace a socket another process bound since
	// clearStale looked.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fail(fmt.Errorf("%w: another process created %s just now", ErrInUse, path))
		}
		return fail(fmt.Errorf("socket: %w", err))
	}
	return &Listener{UnixListener: ul, path: path, fi: fi}, nil
}

// clearStale removes a socket file at path that no process accepts on.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("socket %s: %w", path, err)
	case fi.Mode()&fs.ModeSocket == 0:
		return fmt.Errorf("%w: %s is a %s; move it away or choose another path", ErrNotSocket, path, describe(fi.Mode()))
	}
	c, err := net.DialTimeout("unix", path, dialTimeout)
	if err == nil {
		c.Close()
		return fmt.Errorf("%w: a process accepts connections on %s (another instance running?)", ErrInUse, path)
	}
	// Only a refused connection proves nothing listens; another failure
	// (no permission, a timeout) says nothing about the socket.
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("socket %s exists and cannot be checked for a listener: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

func describe(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return "file of mode " + m.Type().String()
}

// Path returns the socket's path.
func (l *Listener) Path() string { return l.path }

// Addr returns the socket's address under its final path.
func (l *Listener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

// Close stops accepting and removes the socket file if it is still the one
// Listen created. It is safe to call more than once.
func (l *Listener) Close() error {
	l.once.Do(func() {
		l.err = l.UnixListener.Close()
		if fi, err := os.Lstat(l.path); err == nil && os.SameFile(fi, l.fi) {
			if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) && l.err == nil {
				l.err = fmt.Errorf("remove socket: %w", err)
			}
		}
	})
	return l.err
}
