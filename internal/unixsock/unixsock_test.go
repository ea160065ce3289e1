package unixsock

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.Main(m, map[string]func(){probeEnv: func() { probe(os.Getenv(probeEnv)) }})
}

// wideUmask makes new files as open as the umask allows (0777 for a
// socket) for the rest of the test: the case the helper must survive.
func wideUmask(t *testing.T) {
	old := syscall.Umask(0)
	t.Cleanup(func() { syscall.Umask(old) })
}

func listen(t *testing.T, path string) *Listener {
	t.Helper()
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// listenAndClose listens at path and closes the listener, n times over:
// the window a watcher of the directory gets to see a socket in.
func listenAndClose(t *testing.T, path string, n int) {
	t.Helper()
	for range n {
		l, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// serve answers "ok" on every connection l accepts until l is closed,
// which the test's cleanup does.
func serve(t *testing.T, l net.Listener) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
}

// ping connects to path and wants "ok" within 10 s.
func ping(t *testing.T, path string) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 2)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ok" {
		t.Fatalf("read from %s: %q, %v", path, b, err)
	}
}

func TestListenModeAndClose(t *testing.T) {
	wideUmask(t)
	path := filepath.Join(testutil.ShortTempDir(t), "sub", "a.sock")
	l := listen(t, path)
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSocket == 0 || fi.Mode().Perm() != Mode {
		t.Fatalf("socket %s: mode %v, %v; want a socket of mode %v", path, fi.Mode(), err, Mode)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("created directory: mode %v, %v; want 0700", di.Mode(), err)
	}
	if l.Addr().String() != path || l.Path() != path {
		t.Fatalf("Addr %v, Path %s; want %s", l.Addr(), l.Path(), path)
	}
	serve(t, l)
	ping(t, path)
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after Listen, want the socket only: %v", len(entries), entries)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Close left the socket file: %v", err)
	}
}

// TestNeverReachableWithWiderMode stops Listen at its worst moment, the
// socket bound with the umask's mode 0777 before chmod: it must sit in a
// directory only its owner can enter, with nothing at the final path yet.
// A second goroutine watches the directory across many Listen calls: every
// socket it can see there has mode 0600, every directory mode 0700.
func TestNeverReachableWithWiderMode(t *testing.T) {
	wideUmask(t)
	dir := testutil.ShortTempDir(t)
	path := filepath.Join(dir, "a.sock")
	var checked atomic.Int32
	beforeChmod = func(tmp string) {
		checked.Add(1)
		fi, err := os.Lstat(tmp)
		if err != nil || fi.Mode().Perm() != 0o777 {
			t.Errorf("temporary socket: mode %v, %v; the test wants the umask's 0777 here", fi.Mode(), err)
		}
		tdir := filepath.Dir(tmp)
		di, err := os.Stat(tdir)
		if err != nil || di.Mode().Perm() != 0o700 || filepath.Dir(tdir) != dir {
			t.Errorf("temporary socket's directory %s: mode %v, %v; want 0700 inside %s", tdir, di.Mode(), err, dir)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("something is at %s before the socket is private: %v", path, err)
		}
	}
	t.Cleanup(func() { beforeChmod = nil })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchDir(dir, stop, func(path string, e os.DirEntry) {
			fi, err := os.Lstat(path)
			if err != nil {
				return // gone meanwhile
			}
			switch {
			case fi.Mode()&fs.ModeSocket != 0 && fi.Mode().Perm() != Mode:
				t.Errorf("socket %s reachable with mode %v", e.Name(), fi.Mode().Perm())
			case fi.IsDir() && fi.Mode().Perm() != 0o700:
				t.Errorf("directory %s reachable with mode %v", e.Name(), fi.Mode().Perm())
			}
		})
	}()
	listenAndClose(t, path, 50)
	close(stop)
	wg.Wait()
	if n := checked.Load(); n != 50 {
		t.Fatalf("the worst moment was checked %d times, want 50", n)
	}
}

func TestStaleReplacedLiveRefused(t *testing.T) {
	dir := testutil.ShortTempDir(t)

	// A stale socket (its listener gone, the file left) is replaced.
	path := filepath.Join(dir, "a.sock")
	testutil.StaleSocket(t, path)
	l := listen(t, path)
	serve(t, l)
	ping(t, path)

	// A live one is refused with a clear error, and keeps serving.
	_, err := Listen(path)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), path) {
		t.Fatalf("live socket: want ErrInUse naming %s, got %v", path, err)
	}
	ping(t, path)

	// A path that is not a socket is refused and left as it was.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(file); !errors.Is(err, ErrNotSocket) || !strings.Contains(err.Error(), "regular file") {
		t.Fatalf("regular file: want ErrNotSocket naming a regular file, got %v", err)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "precious" {
		t.Fatalf("the file at the path was touched: %q, %v", b, err)
	}
	if _, err := Listen(dir); !errors.Is(err, ErrNotSocket) {
		t.Fatalf("directory: want ErrNotSocket, got %v", err)
	}
}

// TestCloseLeavesSuccessor: a listener whose socket file was replaced by
// another process's does not remove the successor's on Close.
func TestCloseLeavesSuccessor(t *testing.T) {
	path := filepath.Join(testutil.ShortTempDir(t), "a.sock")
	first := listen(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	second := listen(t, path)
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("the first listener's Close removed its successor's socket: %v", err)
	}
	serve(t, second)
	ping(t, path)
}

// probeEnv makes the test binary a probe process (see probe).
const probeEnv = "UNIXSOCK_TEST_PROBE_DIR"

// probe runs as another user: until its standard input closes, it tries to
// connect to every socket it can find in dir and one level below, and
// prints the name of each it reached once.
func probe(dir string) {
	stop := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	reached := map[string]bool{}
	try := func(path, name string) {
		if fi, err := os.Lstat(path); err != nil || fi.Mode()&fs.ModeSocket == 0 || reached[name] {
			return
		}
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			reached[name] = true
			fmt.Printf("reached %s\n", name)
		}
	}
	watchDir(dir, stop, func(path string, e os.DirEntry) {
		try(path, e.Name())
		if e.IsDir() {
			sub, _ := os.ReadDir(path)
			for _, f := range sub {
				try(filepath.Join(path, f.Name()), "temporary "+f.Name())
			}
		}
	})
}

// watchDir calls visit for each entry of dir, read again and again, until
// stop is closed.
func watchDir(dir string, stop <-chan struct{}, visit func(path string, e os.DirEntry)) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			visit(filepath.Join(dir, e.Name()), e)
		}
	}
}

// TestOtherUserNeverConnects runs a probe process as user nobody that tries
// to connect to every socket it can see while Listen runs again and again
// with the umask wide open. It must reach a control socket made with plain
// net.Listen (mode 0777: the probe works) and never one Listen made.
func TestOtherUserNeverConnects(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the probe as another user")
	}
	wideUmask(t)
	dir := testutil.ShortTempDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	control, err := net.Listen("unix", filepath.Join(dir, "control.sock"))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, control)

	// The probe is this test binary, copied where user nobody may run it.
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "probe")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), probeEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start a process as user nobody here: %v", err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var reached []string
	select {
	case l := <-lines:
		reached = append(reached, l)
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the probe did not reach the control socket of mode 0777 within 30 s")
	}
	if reached[0] != "reached control.sock" {
		t.Fatalf("the probe's first connection: %q, want the control socket", reached[0])
	}

	path := filepath.Join(dir, "a.sock")
	listenAndClose(t, path, 300)
	stdin.Close()
	for l := range lines {
		reached = append(reached, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if len(reached) != 1 {
		t.Fatalf("user nobody connected to sockets Listen made: %q", reached[1:])
	}
}
