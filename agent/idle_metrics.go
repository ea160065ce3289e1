package agent

import "github.com/prometheus/client_golang/prometheus"

// idleMetrics reports each endpoint's idle sampling (docs/linkmon.md,
// "Idle links"): whether the link is on the idle schedule, how often an
// idle link's own samples woke the busy schedule, and how often a
// possible change they showed was dismissed by pings at the busy rate.
// Wakes that keep rising on a link that carries nothing are pongs the
// machine delays beyond the link's jitter.
// It reads every endpoint's monitor.
func idleMetrics(a *Agent) collectorFunc {
	idle := desc("link_idle", "1 while the link monitor samples the endpoint's link on the idle schedule (nothing sent for idle_after).", "endpoint")
	wakes := desc("link_idle_wakes_total", "Returns of an idle link to the busy sampling schedule on a change its own samples showed (not on traffic).", "endpoint")
	dismissed := desc("link_idle_dismissed_total", "Possible changes an idle link's pings showed that pinging at the busy rate found none (no probe train sent).", "endpoint")
	return func(ch chan<- prometheus.Metric) {
		for _, e := range a.endpointList() {
			name := e.name
			st := e.mon.Stats()
			ch <- prometheus.MustNewConstMetric(idle, prometheus.GaugeValue, b2f(e.mon.Idle()), name)
			ch <- prometheus.MustNewConstMetric(wakes, prometheus.CounterValue, float64(st.IdleWakes), name)
			ch <- prometheus.MustNewConstMetric(dismissed, prometheus.CounterValue, float64(st.IdleDismissed), name)
		}
	}
}
