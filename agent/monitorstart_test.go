package agent

import (
	"testing"

	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestMonitorRunsOnceStarted: once Start has returned, each endpoint's
// link monitor runs, so that stopping it (transport.bandwidth.monitor.stop)
// or measuring at once finds it; it answered ErrNoMonitor while the
// endpoint's goroutine had not yet started it (TestTimelineCommand in
// agent/control failed so under -race). Several agents, each stopped
// right after its start, as the goroutine wins the race most times.
func TestMonitorRunsOnceStarted(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	for i := range 10 {
		a := newAgent(t, p, coretest.AgentConfig(t, p, testutil.SilentUDPAddr(t)), Options{})
		if err := a.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		_, err := a.StopMonitor("core")
		if cerr := a.Close(); cerr != nil {
			t.Fatalf("agent %d: Close: %v", i, cerr)
		}
		if err != nil {
			t.Fatalf("agent %d: StopMonitor right after Start: %v", i, err)
		}
	}
}
