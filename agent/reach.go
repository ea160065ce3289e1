package agent

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linkmon"
)

// LinkState is what the agent can say of its link to an endpoint's core
// (docs/linkmon.md, "Reachability"). A QUIC connection outlives an outage
// until its idle timeout, so a connection alone is not a link: status
// said "connected" with 0 % loss for over 20 s after the link emulator
// was killed.
type LinkState string

const (
	// LinkConnected: a connection is up and the core answers.
	LinkConnected LinkState = "connected"
	// LinkUnreachable: a connection is up but nothing has answered for
	// longer than the outage rule (more than max_missed samples over
	// min_outage): the link is down; the class is intermittent.
	LinkUnreachable LinkState = "unreachable"
	// LinkDisconnected: no connection (dialling, or it cannot connect:
	// see LastError).
	LinkDisconnected LinkState = "disconnected"
)

// linkState says which state the endpoint is in, why, and since when
// nothing answered (nil while the core answers).
func linkState(connected bool, st linkmon.Status, lastErr *ConnError, now time.Time) (LinkState, string, *time.Time) {
	down := st.DownSince
	switch {
	case !connected && lastErr != nil:
		return LinkDisconnected, "no connection: " + lastErr.Error, down
	case !connected:
		return LinkDisconnected, "no connection yet: connecting", down
	case down != nil:
		return LinkUnreachable, fmt.Sprintf("no answer from the core for %s (%d samples unanswered): the link is down; the connection is kept until its idle timeout",
			units.FormatDuration(now.Sub(*down).Round(100*time.Millisecond)), st.Missed), down
	}
	return LinkConnected, "the core answers", nil
}

// reachMetrics exports each endpoint's LinkState: cheap (the monitor's
// snapshot and the connection), so it does not read the outbox.
func reachMetrics(a *Agent) collectorFunc {
	reachable := desc("link_reachable", "1 while a connection to the endpoint's core is up and the core answers; 0 while it is unreachable (no answer past the outage rule) or not connected.",
		"endpoint", "state")
	downSince := desc("link_down_seconds", "Seconds since the endpoint's core last answered, while it does not (unreachable or not connected); 0 while it answers.", "endpoint")
	return func(ch chan<- prometheus.Metric) {
		now := time.Now()
		for _, e := range a.endpointList() {
			name := e.name
			state, _, down := linkState(e.conn.Load() != nil, e.mon.Snapshot().Status, e.stats.lastErr.load(), now)
			ch <- prometheus.MustNewConstMetric(reachable, prometheus.GaugeValue, b2f(state == LinkConnected), name, string(state))
			var secs float64
			if down != nil {
				secs = now.Sub(*down).Seconds()
			}
			ch <- prometheus.MustNewConstMetric(downSince, prometheus.GaugeValue, secs, name)
		}
	}
}
