package core

import (
	"fmt"
	"testing"
)

// TestAgentTableBound: the core keeps the figures of at most
// MaxTrackedAgents agents (the label values of its per-agent metrics);
// a new one pushes out the disconnected agent heard from longest ago,
// never a connected one.
func TestAgentTableBound(t *testing.T) {
	var tab agentTable
	connected := tab.connect("live") // stays connected throughout
	for i := range MaxTrackedAgents + 10 {
		f := tab.connect(fmt.Sprintf("site-%d", i))
		tab.disconnect(f)
		f.lastSeen.Store(int64(i + 1)) // in order, whatever the clock's resolution
	}
	if n := len(tab.m); n != MaxTrackedAgents {
		t.Fatalf("table holds %d agents, want %d", n, MaxTrackedAgents)
	}
	if tab.m["live"] != connected {
		t.Fatal("the connected agent was forgotten")
	}
	for i := range 11 {
		if _, ok := tab.m[fmt.Sprintf("site-%d", i)]; ok {
			t.Fatalf("site-%d, among the longest unseen, is still kept", i)
		}
	}
	if _, ok := tab.m[fmt.Sprintf("site-%d", MaxTrackedAgents+9)]; !ok {
		t.Fatal("the newest agent is not kept")
	}
}
