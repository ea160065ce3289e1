package jsstore

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		crashChild()
		return
	}
	if os.Getenv(coreChildEnv) != "" {
		coreChild()
		return
	}
	goleak.VerifyTestMain(m)
}
