package agent

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edge-sync/edge-sync/budget"
)

// budgetMetrics turns each endpoint's budget into metrics at scrape
// time. The spend figures are gauges: they fall to zero when a period
// renews (docs/budget.md#metrics).
func budgetMetrics(a *Agent) collectorFunc {
	var (
		allowance  = desc("budget_allowance_bytes", "The endpoint's data allowance per period.", "endpoint")
		spent      = desc("budget_spent_bytes", "Bytes sent this period, counted as UDP payload leaving the agent's socket.", "endpoint")
		byClass    = desc("budget_spent_class_bytes", "Bytes sent this period, by the link class they were sent on.", "endpoint", "class")
		byPriority = desc("budget_spent_priority_bytes", "Op data sent this period, by priority; priority=\"overhead\" is the rest of the spend (handshakes, acknowledgements, probes, retransmissions).", "endpoint", "priority")
		forecast   = desc("budget_forecast_bytes", "Spend forecast for the period's end at the rate since it began.", "endpoint")
		held       = desc("budget_held", "1 while the budget holds a priority's data back (at or near its stop), 0 otherwise.", "endpoint", "priority")
		periodEnd  = desc("budget_period_end_timestamp_seconds", "When the current period ends and the allowance renews (Unix time).", "endpoint")
	)
	return func(ch chan<- prometheus.Metric) {
		gauge := func(d *prometheus.Desc, v float64, l ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
		}
		for _, e := range a.endpointList() {
			name := e.name
			if e.budget == nil {
				continue
			}
			st := e.budget.Status()
			gauge(allowance, float64(st.Allowance), name)
			gauge(spent, float64(st.Spent), name)
			gauge(forecast, float64(st.Forecast), name)
			gauge(periodEnd, float64(st.PeriodEnd.Unix()), name)
			for class, n := range st.ByClass {
				gauge(byClass, float64(n), name, class)
			}
			for p, n := range st.ByPriority {
				gauge(byPriority, float64(n), name, p)
			}
			gauge(byPriority, float64(st.Overhead), name, "overhead")
			for _, ps := range st.Priorities {
				gauge(held, b2f(ps.Verdict != budget.Send), name, ps.Priority.String())
			}
		}
	}
}
