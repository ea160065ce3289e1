package core

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler returns /metrics in Prometheus format, on a registry of
// its own: the server's counters and, when store is not nil, the store's
// figures per agent. Everything is read at scrape time.
func (s *Server) MetricsHandler(store Backend) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCoreCollector(s, store))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func cdesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("edge_sync_core_"+name, help, labels, nil)
}

type coreCollector struct {
	s     *Server
	store Backend

	conns, accepted, refused, applied, dups, nacked *prometheus.Desc
	summaries, received, appliedBytes, pings        *prometheus.Desc
	streamsReset, internalErrors                    *prometheus.Desc
	full, fullRefused                               *prometheus.Desc
	frameMemory, frameMemoryPeak, frameMemRefused   *prometheus.Desc
	agents, keys, events, bytes, eventBytes         *prometheus.Desc
	reserved, appliedIdx, dedups, kept, evicted     *prometheus.Desc
	// Per agent heard from since start (Server.Agents), at most
	// MaxTrackedAgents label values.
	agentConnected, agentLastSeen, agentOps, agentBytes, agentLastOp *prometheus.Desc
}

func newCoreCollector(s *Server, store Backend) *coreCollector {
	return &coreCollector{
		s: s, store: store,
		conns:           cdesc("connections", "Live agent connections."),
		accepted:        cdesc("connections_accepted_total", "Agent connections accepted since start."),
		refused:         cdesc("connections_refused_total", "Agent connections refused (unknown agent, bad hello)."),
		applied:         cdesc("ops_applied_total", "Ops applied to the store."),
		dups:            cdesc("ops_duplicate_total", "Ops received again and acknowledged without applying (de-duplications)."),
		nacked:          cdesc("ops_nacked_total", "Ops refused with a NACK."),
		summaries:       cdesc("summaries_total", "Summaries received."),
		received:        cdesc("bytes_received_total", "Encoded payload bytes read from the network."),
		appliedBytes:    cdesc("bytes_applied_total", "Plain payload bytes stored."),
		pings:           cdesc("pings_total", "Link-monitor pings answered."),
		streamsReset:    cdesc("streams_reset_total", "Op streams the agent reset, or whose connection went away, before they were answered."),
		internalErrors:  cdesc("internal_errors_total", "Op streams that failed for a reason of the core's own (answered internal, logged as errors)."),
		full:            cdesc("store_full", "1 while the store has no room: a write found none (a full disk, a size limit) and no op was stored since."),
		fullRefused:     cdesc("store_full_refusals_total", "Ops and summaries refused for want of room in the store (answered store-full; the agents keep them)."),
		frameMemory:     cdesc("frame_memory_bytes", "Memory held for frames in flight: bodies as they arrive, decoded chunks, lane data."),
		frameMemoryPeak: cdesc("frame_memory_peak_bytes", "The most memory held for frames in flight at once since start."),
		frameMemRefused: cdesc("frame_memory_refused_total", "Reservations of frame memory past a connection's or the core's bound (each refuses an op or a stream busy)."),
		agents:          cdesc("store_agents", "Agents known to the store."),
		keys:            cdesc("store_keys", "Keys with a current version.", "agent"),
		events:          cdesc("store_events", "Events kept.", "agent"),
		bytes:           cdesc("store_bytes", "Stored object and event bytes.", "agent"),
		eventBytes:      cdesc("store_event_bytes", "Event payload bytes kept.", "agent"),
		reserved:        cdesc("store_reserved_bytes", "Declared bytes of partially received ops.", "agent"),
		appliedIdx:      cdesc("store_applied_ops", "Entries in the applied-op (de-duplication) index.", "agent"),
		dedups:          cdesc("store_dedups_total", "Duplicate ops acknowledged again, not applied.", "agent"),
		kept:            cdesc("store_summaries", "Summaries kept.", "agent"),
		evicted:         cdesc("store_evicted_total", "Events dropped by retention.", "agent"),

		agentConnected: cdesc("agent_connected", "1 while the agent has a live connection.", "agent"),
		agentLastSeen:  cdesc("agent_last_seen_timestamp_seconds", "When the agent was last heard from (connection, op stream or ping), Unix time.", "agent"),
		agentOps:       cdesc("agent_ops_received_total", "The agent's ops received in full and acknowledged (stored, or duplicates acknowledged again).", "agent"),
		agentBytes:     cdesc("agent_bytes_received_total", "Plain payload bytes of the agent's ops stored.", "agent"),
		agentLastOp:    cdesc("agent_last_op_timestamp_seconds", "When the agent's last op was acknowledged, Unix time; absent before the first.", "agent"),
	}
}

// Describe sends the descriptors of every metric.
func (c *coreCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

// Collect reads the server's and the store's counters.
func (c *coreCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), l...)
	}
	counter := func(d *prometheus.Desc, v int64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	st := c.s.Stats()
	gauge(c.conns, st.Connections)
	counter(c.accepted, st.Accepted)
	counter(c.refused, st.Refused)
	counter(c.applied, st.OpsApplied)
	counter(c.dups, st.OpsDuplicate)
	counter(c.nacked, st.OpsNacked)
	counter(c.summaries, st.Summaries)
	counter(c.received, st.BytesReceived)
	counter(c.appliedBytes, st.BytesApplied)
	counter(c.pings, st.Pings)
	for _, a := range c.s.Agents() {
		gauge(c.agentConnected, int64(min(a.Connections, 1)), a.Agent)
		ch <- prometheus.MustNewConstMetric(c.agentLastSeen, prometheus.GaugeValue, unixSeconds(a.LastSeen), a.Agent)
		counter(c.agentOps, a.Ops, a.Agent)
		counter(c.agentBytes, a.Bytes, a.Agent)
		if !a.LastOp.IsZero() {
			ch <- prometheus.MustNewConstMetric(c.agentLastOp, prometheus.GaugeValue, unixSeconds(a.LastOp), a.Agent)
		}
	}
	counter(c.streamsReset, st.StreamsReset)
	counter(c.internalErrors, st.InternalErrors)
	full := int64(0)
	if st.StoreFull {
		full = 1
	}
	gauge(c.full, full)
	counter(c.fullRefused, st.StoreFullRefusals)
	gauge(c.frameMemory, st.FrameMemory)
	gauge(c.frameMemoryPeak, st.FrameMemoryPeak)
	counter(c.frameMemRefused, st.FrameMemoryRefused)
	if c.store == nil {
		return
	}
	ss, err := c.store.Stats()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.agents, err)
		return
	}
	gauge(c.agents, int64(ss.Agents))
	for agent, a := range ss.ByAgent {
		gauge(c.keys, a.Keys, agent)
		gauge(c.events, a.Events, agent)
		gauge(c.bytes, a.Bytes, agent)
		gauge(c.eventBytes, a.EventBytes, agent)
		gauge(c.reserved, a.Reserved, agent)
		gauge(c.appliedIdx, a.Applied, agent)
		counter(c.dedups, a.Dedups, agent)
		gauge(c.kept, a.Summaries, agent)
		counter(c.evicted, a.Evicted, agent)
	}
}

// unixSeconds is t as Unix time in seconds, with its fraction.
func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
