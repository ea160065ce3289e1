package testutil

import (
	"io"
	"os"
	"os/exec"
	"testing"

	"go.uber.org/goleak"
)

// Main is the TestMain of a package whose tests start children
// (StartChild): when the environment sets one of children's variables (to
// anything but ""), this binary is that child and runs its function, not
// the tests; the process exits when the function returns, if it has not
// exited itself. Otherwise Main runs the tests, and fails them if a
// goroutine they started is still running at the end (goleak).
func Main(m *testing.M, children map[string]func()) {
	for env, child := range children {
		if os.Getenv(env) != "" {
			child()
			return
		}
	}
	goleak.VerifyTestMain(m)
}

// StartChild starts this test binary again as a child process that runs
// no test, with env ("NAME=value") added to its environment: the
// package's TestMain sees env and plays the child's part (a writer to be
// killed with SIGKILL, say). The child's stderr goes to stderr. It returns
// the started command, for Wait or Process.Kill, and the child's stdout.
func StartChild(tb testing.TB, stderr io.Writer, env ...string) (*exec.Cmd, io.ReadCloser) {
	tb.Helper()
	return startCmd(tb, exec.Command(os.Args[0], "-test.run=^$"), stderr, env)
}

// StartChildActivated is StartChild handing the child sock as socket
// activation does (ActivatedCommand): a core child takes it as a core
// started by systemd would.
func StartChildActivated(tb testing.TB, stderr io.Writer, sock *os.File, env ...string) (*exec.Cmd, io.ReadCloser) {
	tb.Helper()
	return startCmd(tb, ActivatedCommand(sock, os.Args[0], "-test.run=^$"), stderr, env)
}

// ActivatedCommand returns a command that runs bin with args as socket
// activation starts a service (sd_listen_fds(3); docs/core.md, "Running
// under systemd"): sock is its descriptor 3, LISTEN_FDS 1 and LISTEN_PID
// its PID, set by a shell that then becomes bin (exec keeps the PID).
func ActivatedCommand(sock *os.File, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command("/bin/sh", append([]string{"-c", `export LISTEN_PID=$$; exec "$0" "$@"`, bin}, args...)...)
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=quic")
	cmd.ExtraFiles = []*os.File{sock}
	return cmd
}

// startCmd starts cmd with env added to its environment (the process's
// when cmd has none) and its stderr to stderr, and returns its stdout.
func startCmd(tb testing.TB, cmd *exec.Cmd, stderr io.Writer, env []string) (*exec.Cmd, io.ReadCloser) {
	tb.Helper()
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	return cmd, out
}
