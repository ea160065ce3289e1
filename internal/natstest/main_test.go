package natstest

import (
	"testing"

	"go.uber.org/goleak"
)

// Every server and cluster a test starts must be stopped by the time the
// package's tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
