package agent

import "github.com/prometheus/client_golang/prometheus"

// MoveReason is why an endpoint moved to another of its core addresses
// (failover.go): the label of edge_sync_address_moves_total.
type MoveReason int

// The reasons of a move.
const (
	// MoveUnreachable: the address in use did not answer; another did.
	MoveUnreachable MoveReason = iota
	// MoveShutdown: the core at the address in use closed the connection
	// saying it shuts down.
	MoveShutdown
	// MoveFailBack: the first address answers again (fail_back).
	MoveFailBack
	numMoveReasons
)

// String is the reason's metric label.
func (r MoveReason) String() string {
	switch r {
	case MoveUnreachable:
		return "unreachable"
	case MoveShutdown:
		return "shutdown"
	case MoveFailBack:
		return "fail_back"
	}
	return "unknown"
}

// failoverMetrics reports each endpoint's address moves and the
// address in use, read at scrape time (docs/control-api.md, "Metrics").
func failoverMetrics(ag *Agent) collectorFunc {
	moves := desc("address_moves_total", "Moves of an endpoint to another of its core addresses (failover and fail-back), by reason: unreachable, shutdown, fail_back.",
		"endpoint", "reason")
	index := desc("address_index", "Index in the endpoint's addresses list of the core address in use (0: the first, preferred one), with that address as a label.",
		"endpoint", "address")
	return func(ch chan<- prometheus.Metric) {
		for _, e := range ag.endpointList() {
			a := e.addrs
			a.mu.Lock()
			cur, addr, by := a.cur, a.list[a.cur], a.movesBy
			a.mu.Unlock()
			ch <- prometheus.MustNewConstMetric(index, prometheus.GaugeValue, float64(cur), e.name, addr)
			for r := range numMoveReasons {
				ch <- prometheus.MustNewConstMetric(moves, prometheus.CounterValue, float64(by[r]), e.name, r.String())
			}
		}
	}
}
