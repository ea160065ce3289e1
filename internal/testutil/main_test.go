package testutil

import (
	"fmt"
	"os"
	"testing"
)

// childEnv makes this test binary a child of TestStartChild: it prints the
// variable's value and exits.
const childEnv = "TESTUTIL_CHILD"

func TestMain(m *testing.M) {
	Main(m, map[string]func(){childEnv: func() {
		fmt.Println(os.Getenv(childEnv))
		fmt.Fprintln(os.Stderr, "child stderr")
		os.Exit(3)
	}})
}
