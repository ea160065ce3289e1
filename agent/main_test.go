package agent

import (
	"testing"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// Every agent, core, link and monitor a test starts must be stopped by the
// time the package's tests end.
func TestMain(m *testing.M) {
	testutil.Main(m, map[string]func(){budgetChildEnv: budgetChild})
}
