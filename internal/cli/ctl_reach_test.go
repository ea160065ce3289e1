package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/agent"
)

// ctl status says unreachable, since when and why, while the connection
// is up but the core does not answer (issue #14), and connected otherwise.
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
