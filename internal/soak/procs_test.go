package soak

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edge-sync-soak-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binDir = dir
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		os.RemoveAll(dir)
		os.Exit(code)
	}))
}

var (
	buildOnce sync.Once
	buildErr  error
)

// edgeSync builds the edge-sync binary once per test run and returns its
// path.
func edgeSync(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(binDir, "edge-sync")
	buildOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", bin, "github.com/edge-sync/edge-sync/cmd/edge-sync").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return bin
}

// proc is a running edge-sync process.
type proc struct {
	name     string
	cmd      *exec.Cmd
	out      *testutil.Buffer
	closeLog func() error
	done     chan struct{}
}

// startProc starts edge-sync with args; its output is kept for failures,
// and appended to logFile too when it is not "".
func startProc(tb testing.TB, name, logFile string, args ...string) *proc {
	tb.Helper()
	return startBin(tb, edgeSync(tb), name, logFile, args...)
}

// startBin is startProc with another edge-sync binary (a baseline's).
func startBin(tb testing.TB, bin, name, logFile string, args ...string) *proc {
	tb.Helper()
	return startCmd(tb, exec.Command(bin, args...), name, logFile)
}

// startCmd is startProc with the command made: a process started as by
// socket activation, say.
func startCmd(tb testing.TB, cmd *exec.Cmd, name, logFile string) *proc {
	tb.Helper()
	p := &proc{name: name, cmd: cmd, out: &testutil.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			tb.Fatal(err)
		}
		w := io.MultiWriter(p.out, f)
		p.cmd.Stdout, p.cmd.Stderr = w, w
		p.closeLog = f.Close
	}
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		_ = p.cmd.Wait() // a killed process exits with an error
		if p.closeLog != nil {
			_ = p.closeLog() // a log file that does not close loses only diagnostics
		}
		close(p.done)
	}()
	return p
}

// waitLog waits until the process has logged line, and fails if it exits
// first.
func (p *proc) waitLog(tb testing.TB, d time.Duration, line string) {
	tb.Helper()
	ok := testutil.Poll(d, func() bool { return p.exited() || strings.Contains(p.out.String(), line) })
	if !ok || p.exited() {
		tb.Fatalf("%s did not log %q within %v (exited: %v):\n%s", p.name, line, d, p.exited(), tail(p.out, 40))
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// memory returns the process's resident set now and its high-water mark,
// in bytes, from /proc/PID/status.
func (p *proc) memory() (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			rss = n << 10
		case "VmHWM:":
			hwm = n << 10
		}
	}
	if rss == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("no VmRSS/VmHWM in /proc/%d/status", p.cmd.Process.Pid)
	}
	return rss, hwm, nil
}

// tail returns the last n lines of b.
func tail(b *testutil.Buffer, n int) string {
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// writeFile writes a config file.
func writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// coreConfig writes the config of a core listening on addr with its data
// in dir, and returns its path. Everything else is the default.
func coreConfig(tb testing.TB, p *testutil.PKI, dir, addr string) string {
	tb.Helper()
	path := filepath.Join(dir, "core.hcl")
	writeFile(tb, path, fmt.Sprintf(`name = "core"
listen = %q
data_dir = %q
tls {
  ca = %q
  cert = %q
  key = %q
}
`, addr, filepath.Join(dir, "core"), p.CAFile, p.CoreCert, p.CoreKey))
	return path
}

// agentHCL is an agent's configuration as the soak tests write it: one
// endpoint "core" at Addr, with the agent's certificate and key.
type agentHCL struct {
	Name, DataDir string
	CA, Cert, Key string
	Addr          string
	EndpointExtra string // lines inside the endpoint block
	Extra         string // blocks after it, such as profiles
}

// write writes the configuration to path.
func (c agentHCL) write(tb testing.TB, path string) {
	tb.Helper()
	writeFile(tb, path, fmt.Sprintf(`name = %q
data_dir = %q
tls {
  ca = %q
  cert = %q
  key = %q
}
endpoint "core" {
  address = %q
  server_name = "127.0.0.1"%s
}
%s`, c.Name, c.DataDir, c.CA, c.Cert, c.Key, c.Addr, c.EndpointExtra, c.Extra))
}

// startCore starts a core process on cfg and waits until it listens;
// extra arguments follow the config.
func startCore(tb testing.TB, cfg, logFile string, extra ...string) *proc {
	tb.Helper()
	c := startProc(tb, "core", logFile, append([]string{"core", "--config", cfg}, extra...)...)
	c.waitLog(tb, 30*time.Second, "listening")
	return c
}

// startCoreOn is startCore serving on sock, a socket the test holds
// (testutil.UDPSocketFile), handed over as systemd's socket activation
// does: a core killed and started again keeps its port, with no moment at
// which another process could take it.
func startCoreOn(tb testing.TB, sock *os.File, cfg, logFile string, extra ...string) *proc {
	tb.Helper()
	cmd := testutil.ActivatedCommand(sock, edgeSync(tb), append([]string{"core", "--config", cfg}, extra...)...)
	c := startCmd(tb, cmd, "core", logFile)
	c.waitLog(tb, 30*time.Second, "listening")
	return c
}
