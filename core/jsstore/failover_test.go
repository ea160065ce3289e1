package jsstore

import (
	"strings"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/natstest"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestAgentFailsOverBetweenAddresses: two cores on one JetStream, one
// agent whose endpoint lists both. Core A's server closes in the middle of
// a large transfer; the same agent process moves to core B, which resumes
// the op where the shared store says, and every op arrives exactly once.
// Then core A is back on its address: the agent moves back to it within
// fail_back and sends what comes next there.
func TestAgentFailsOverBetweenAddresses(t *testing.T) {
	srv := natstest.Run(t)
	f := newFleet(t, []string{srv.URL()})
	a1, b1 := f.startCore("core-a", 1), f.startCore("core-b", 1)
	const failBack = time.Second
	ag := f.startAgentWith(config.Endpoint{Address: a1.addr, Addresses: []string{a1.addr, b1.addr}, FailBack: failBack})
	p, unacked := f.midTransfer(ag)
	a1.stop(t) // core A's server closes; the agent keeps running

	f.waitDrained(ag)
	f.verify()
	status := func() agent.LinkStatus {
		s, err := ag.Status("core")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := status(); s.Address != b1.addr || !strings.HasPrefix(s.AddressChoice.Reason, "failed over from "+a1.addr) {
		t.Errorf("after the failover the agent uses %s (%q), want %s, failed over from %s", s.Address, s.AddressChoice.Reason, b1.addr, a1.addr)
	}
	f.checkResumed(a1, b1, p, unacked)

	// Core A comes back on its address.
	a2 := f.startCoreAt("core-a", 1, a1.addr)
	testutil.WaitFor(t, 30*failBack+time.Minute, "the agent to move back to core A", func() bool {
		s := status()
		return s.Connected && s.Address == a1.addr
	})
	if s := status(); !strings.HasPrefix(s.AddressChoice.Reason, "back to the first address") || s.AddressChoice.Moves != 2 {
		t.Errorf("moved back with reason %q after %d moves, want back to the first address after 2", s.AddressChoice.Reason, s.AddressChoice.Moves)
	}
	f.enqueue(ag, 2)
	f.waitDrained(ag)
	f.verify()
	if a2.srv.Stats().OpsApplied == 0 {
		t.Error("core A, back, applied nothing of what came after")
	}
}
