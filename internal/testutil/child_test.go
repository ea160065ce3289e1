package testutil

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestStartChild: the child runs TestMain with the variable set, its
// stdout comes back, its stderr goes where asked.
func TestStartChild(t *testing.T) {
	var stderr bytes.Buffer
	cmd, out := StartChild(t, &stderr, childEnv+"=hello from the child")
	got, err := io.ReadAll(out)
	if err != nil {
		t.Fatal(err)
	}
	var exit *exec.ExitError
	if err := cmd.Wait(); !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("child ended with %v, want exit status 3 from TestMain", err)
	}
	if strings.TrimSpace(string(got)) != "hello from the child" || strings.TrimSpace(stderr.String()) != "child stderr" {
		t.Fatalf("child printed %q on stdout and %q on stderr", got, stderr.String())
	}
}
