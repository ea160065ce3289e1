package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/agent"
)

// ctl status says unreachable, since when and why, while the connection
// is up but the core does not answer, and connected otherwise
// (docs/linkmon.md, "Reachability").
func TestPrintStatusUnreachable(t *testing.T) {
	now := time.Now()
	down := now.Add(-12 * time.Second)
	st := agent.LinkStatus{Endpoint: "core", Address: "10.0.0.1:7443", Connected: true, State: agent.LinkUnreachable, DownSince: &down,
		StateReason: "no answer from the core for 12s (48 samples unanswered): the link is down; the connection is kept until its idle timeout"}
	var out bytes.Buffer
	printStatus(&out, st, now)
	first, _, _ := strings.Cut(out.String(), "\n")
	if !strings.Contains(first, "unreachable") || strings.Contains(first, "connected") {
		t.Fatalf("first line %q: want the endpoint unreachable, not connected", first)
	}
	if !strings.Contains(out.String(), "down since") || !strings.Contains(out.String(), "(12s ago)") || !strings.Contains(out.String(), "48 samples unanswered") {
		t.Fatalf("status does not say since when and why the link is down:\n%s", out.String())
	}
	st.State, st.DownSince, st.StateReason = agent.LinkConnected, nil, "the core answers"
	out.Reset()
	printStatus(&out, st, now)
	if first, _, _ := strings.Cut(out.String(), "\n"); !strings.HasSuffix(strings.TrimSpace(first), ", connected") || strings.Contains(out.String(), "down since") {
		t.Fatalf("status of a connected link:\n%s", out.String())
	}
}

// ctl status says that the core refuses to store (its store is full), on
// whose side, since when, when the next try goes and that the data stays
// queued; nothing of it while the core stores.
func TestPrintStatusCoreRefusing(t *testing.T) {
	now := time.Now()
	st := agent.LinkStatus{Endpoint: "core", Address: "10.0.0.1:7443", Connected: true, State: agent.LinkConnected,
		CoreRefusing: &agent.CoreRefusal{Code: "store-full", Since: now.Add(-90 * time.Second), Refusals: 7, NextTry: now.Add(16 * time.Second),
			Explain: "the core's store has no room (on the core's side: its operator frees space there); the ops stay queued in this outbox"}}
	var out bytes.Buffer
	printStatus(&out, st, now)
	line := grepLines(out.String(), "core refuses")
	for _, want := range []string{"store-full", "(1m30s ago)", "7 refusals", "next try in 16s", "core's side", "stay queued"} {
		if !strings.Contains(line, want) {
			t.Fatalf("status line %q does not say %q:\n%s", line, want, out.String())
		}
	}
	st.CoreRefusing = nil
	out.Reset()
	printStatus(&out, st, now)
	if strings.Contains(out.String(), "core refuses") {
		t.Fatalf("status of a core that stores says it refuses:\n%s", out.String())
	}
}
