package agent

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// Every agent, core, link and monitor a test starts must be stopped by the
// time the package's tests end.
func TestMain(m *testing.M) {
	if os.Getenv(budgetChildEnv) != "" {
		budgetChild() // never returns
	}
	goleak.VerifyTestMain(m)
}
