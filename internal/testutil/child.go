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
	return StartChildFiles(tb, stderr, nil, env...)
}

// StartChildFiles is StartChild handing the child files too: files[i] is
// the child's descriptor 3+i (a socket the test holds: UDPSocketFile).
func StartChildFiles(tb testing.TB, stderr io.Writer, files []*os.File, env ...string) (*exec.Cmd, io.ReadCloser) {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = files
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
