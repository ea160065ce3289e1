package testutil

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// childEnv makes this test binary a child of TestStartChild: it prints the
// variable's value and exits.
const childEnv = "TESTUTIL_CHILD"

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		fmt.Println(v)
		fmt.Fprintln(os.Stderr, "child stderr")
		os.Exit(3)
	}
	goleak.VerifyTestMain(m)
}
