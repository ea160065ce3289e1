package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/outbox"
)

// MetricsHandler returns /metrics in Prometheus format, on a registry of
// its own. Every figure is read at scrape time from Stats, Status and the
// outbox's Stats, so the handler costs nothing between scrapes.
func (a *Agent) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newAgentCollector(a), budgetMetrics(a), failoverMetrics(a), idleMetrics(a), reachMetrics(a))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("edge_sync_"+name, help, labels, nil)
}

// collectorFunc is a collector made of the function that sends its
// metrics, read at scrape time; its descriptors are those of a
// collection. Each of the agent's smaller groups of metrics is one.
type collectorFunc func(ch chan<- prometheus.Metric)

// Describe sends the descriptors of every metric.
func (f collectorFunc) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(f, ch) }

// Collect sends the metrics.
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

// agentCollector turns the agent's snapshots into metrics.
type agentCollector struct {
	a  *Agent
	ob *outbox.Outbox // the agent's, for the queue figures

	bandwidth, rtt, jitter, loss, class, connected, mode *prometheus.Desc
	queueOps, queueBytes, leased, drops                  *prometheus.Desc
	quarantinedOps, quarantinedBytes                     *prometheus.Desc
	wireBytes, plainBytes, transfers, goodput, acks      *prometheus.Desc
	latencyMax, probeBytes, retries, nacks, switches     *prometheus.Desc
	connects, dialFailures, summaries, drainETA          *prometheus.Desc
	summaryHeld                                          *prometheus.Desc
	backfilled, backfilledBytes, heldOps, heldBytes      *prometheus.Desc
	connectError                                         *prometheus.Desc
	packs, packedOps                                     *prometheus.Desc
}

func newAgentCollector(a *Agent) *agentCollector {
	return &agentCollector{
		a:         a,
		ob:        a.ob,
		bandwidth: desc("link_bandwidth_bps", "Measured link capacity in bit/s (median of the classification window); 0 when not measured.", "endpoint"),
		rtt:       desc("link_rtt_seconds", "Measured round-trip time (median).", "endpoint"),
		jitter:    desc("link_jitter_seconds", "Measured round-trip time variation (median).", "endpoint"),
		loss:      desc("link_loss_ratio", "Measured packet loss ratio, 0..1 (median).", "endpoint"),
		class:     desc("link_class", "1 for the endpoint's effective link class (pinned or measured), 0 for the others.", "endpoint", "class"),
		connected: desc("link_connected", "1 while a connection to the endpoint's core is up.", "endpoint"),
		connectError: desc("link_connect_error", "1 while the endpoint cannot connect, with the last attempt's error as a label (a wrong server_name, a DNS failure); absent while connected.",
			"endpoint", "error"),
		mode:       desc("sync_mode", "1 for the endpoint's current sync mode, 0 for the others.", "endpoint", "mode"),
		drainETA:   desc("backlog_drain_seconds", "Estimated time to drain the backlog at the measured bandwidth; 0 when the bandwidth is unknown.", "endpoint"),
		queueOps:   desc("queue_ops", "Ops waiting in the outbox, by priority.", "priority"),
		queueBytes: desc("queue_bytes", "Payload bytes waiting in the outbox, by priority.", "priority"),
		leased:     desc("queue_leased_ops", "Ops leased by senders or external consumers."),
		drops:      desc("drops_total", "Ops dropped without delivery since the outbox opened, by reason.", "reason"),
		quarantinedOps: desc("outbox_quarantined_ops",
			"Ops in the outbox's quarantine: found damaged on disk, never sent (run edge-sync ctl transport.outbox.verify)."),
		quarantinedBytes: desc("outbox_quarantined_bytes", "Payload bytes of the ops in quarantine."),
		wireBytes:        desc("wire_bytes_total", "Encoded payload bytes put on the wire, by codec mode.", "endpoint", "mode"),
		plainBytes:       desc("wire_plain_bytes_total", "Plain payload bytes those transfers carried, by codec mode.", "endpoint", "mode"),
		transfers:        desc("transfers_total", "Op transfers started, by codec mode.", "endpoint", "mode"),
		goodput:          desc("goodput_bytes_total", "Plain payload bytes of ops acknowledged by the core, by priority.", "endpoint", "priority"),
		acks:             desc("acks_total", "Ops acknowledged by the core, by priority.", "endpoint", "priority"),
		latencyMax:       desc("ack_latency_max_seconds", "Longest enqueue-to-ack time seen, by priority.", "endpoint", "priority"),
		probeBytes:       desc("probe_bytes_total", "Bytes the link monitor sent to measure the link (packet trains and pings).", "endpoint"),
		retries:          desc("retries_total", "Op transfers retried.", "endpoint"),
		packs:            desc("packs_total", "Streams that carried several small ops or summaries (wire.CapOpsPerStream, CapSummariesPerStream).", "endpoint"),
		packedOps:        desc("packed_ops_total", "Ops sent on those streams.", "endpoint"),
		nacks:            desc("nacks_total", "Ops refused by the core, by reason code (\"other\": codes this agent does not know); an ERROR that ended an op stream counts as the refusal of the first op it left unanswered.", "endpoint", "code"),
		switches:         desc("mode_switches_total", "Sync mode switches.", "endpoint"),
		connects:         desc("connects_total", "Connections established to the core.", "endpoint"),
		dialFailures:     desc("dial_failures_total", "Failed attempts to connect to the core.", "endpoint"),
		summaries:        desc("summaries_total", "Summaries sent ahead of held-back payloads.", "endpoint"),
		summaryHeld:      desc("summary_held_bytes_total", "Payload bytes held back while their summaries went.", "endpoint"),
		backfilled:       desc("backfilled_total", "Ops stored in full after their summary went first (backfill).", "endpoint"),
		backfilledBytes:  desc("backfilled_bytes_total", "Payload bytes of those ops.", "endpoint"),
		heldOps:          desc("summary_held_ops", "Ops whose summary went first and whose full data waits or is backfilling, by priority.", "endpoint", "priority"),
		heldBytes:        desc("summary_held_payload_bytes", "Payload bytes of those ops, by priority.", "endpoint", "priority"),
	}
}

// Describe sends the descriptors of every metric.
func (c *agentCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

// Collect reads the agent's snapshots.
func (c *agentCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	for _, name := range c.a.Endpoints() {
		st, err := c.a.Status(name)
		if err != nil {
			continue // removed meanwhile, or the outbox is closed
		}
		m := st.Figures
		gauge(c.bandwidth, m.BandwidthBps, name)
		gauge(c.rtt, m.RTT.Seconds(), name)
		gauge(c.jitter, m.Jitter.Seconds(), name)
		gauge(c.loss, m.Loss, name)
		gauge(c.connected, b2f(st.Connected), name)
		if st.LastError != nil && !st.Connected {
			gauge(c.connectError, 1, name, st.LastError.Error)
		}
		gauge(c.drainETA, st.DrainETA.Seconds(), name)
		for _, cl := range edgesync.LinkClasses() {
			gauge(c.class, b2f(cl == st.Class), name, cl.String())
		}
		for _, md := range edgesync.SyncModes() {
			gauge(c.mode, b2f(md == st.Params.Mode), name, md.String())
		}
		counter(c.probeBytes, float64(st.ProbeBytes), name)
	}
	for _, es := range c.a.Stats() {
		n := es.Endpoint
		for mode, ms := range es.Modes {
			counter(c.wireBytes, float64(ms.WireBytes), n, mode)
			counter(c.plainBytes, float64(ms.PlainBytes), n, mode)
			counter(c.transfers, float64(ms.Ops), n, mode)
		}
		for p, ps := range es.Priorities {
			counter(c.goodput, float64(ps.Bytes), n, p)
			counter(c.acks, float64(ps.Acked), n, p)
			gauge(c.latencyMax, ps.MaxLatency.Seconds(), n, p)
		}
		for code, v := range es.Nacks {
			counter(c.nacks, float64(v), n, code)
		}
		counter(c.retries, float64(es.Retries), n)
		counter(c.packs, float64(es.Packs), n)
		counter(c.packedOps, float64(es.PackedOps), n)
		counter(c.switches, float64(es.ModeSwitches), n)
		counter(c.connects, float64(es.Connects), n)
		counter(c.dialFailures, float64(es.DialFailures), n)
		counter(c.summaries, float64(es.Summaries), n)
		counter(c.summaryHeld, float64(es.SummaryBytes), n)
		counter(c.backfilled, float64(es.Backfilled), n)
		counter(c.backfilledBytes, float64(es.BackfilledBytes), n)
		for p, h := range es.SummaryHeld {
			gauge(c.heldOps, float64(h.Ops), n, p)
			gauge(c.heldBytes, float64(h.Bytes), n, p)
		}
	}
	st, err := c.ob.Stats()
	if err != nil {
		return
	}
	for _, p := range edgesync.Priorities() {
		gauge(c.queueOps, float64(st.ByPriority[p].Ops), p.String())
		gauge(c.queueBytes, float64(st.ByPriority[p].Bytes), p.String())
	}
	gauge(c.leased, float64(st.Leased))
	gauge(c.quarantinedOps, float64(st.Quarantined.Ops))
	gauge(c.quarantinedBytes, float64(st.Quarantined.Bytes))
	for r := outbox.Reason(0); r < outbox.NumReasons; r++ {
		counter(c.drops, float64(st.Drops[r]), r.String())
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
