package jsstore

import (
	"testing"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.Main(m, map[string]func(){crashChildEnv: crashChild, coreChildEnv: coreChild})
}
