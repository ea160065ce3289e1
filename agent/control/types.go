package control

import (
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// This file holds the request and answer shapes of the control API, so
// that `edge-sync ctl` and other clients share them. docs/control-api.md
// documents each command with examples. Answers that are the agent's own
// (agent.LinkStatus, agent.RuntimeConfig, agent.MonitorResult,
// agent.EndpointStats, linkmon.Measurement) are sent as they are.

// Command names of the control API (docs/control-api.md).
const (
	CmdSend         = "transport.send"
	CmdQuality      = "transport.quality"
	CmdSwitch       = "transport.switch"
	CmdConfig       = "transport.config"
	CmdStats        = "transport.stats"
	CmdMeasure      = "transport.bandwidth.measure"
	CmdStatus       = "transport.bandwidth.status"
	CmdHistory      = "transport.bandwidth.history"
	CmdTimeline     = "transport.bandwidth.timeline"
	CmdQueue        = "transport.bandwidth.sync.queue"
	CmdNext         = "transport.bandwidth.sync.next"
	CmdMonitorStart = "transport.bandwidth.monitor.start"
	CmdMonitorStop  = "transport.bandwidth.monitor.stop"
	CmdVerify       = "transport.outbox.verify"
	CmdPurge        = "transport.outbox.purge"
)

// Commands lists the command names in the order docs/control-api.md
// gives them.
func Commands() []string {
	return []string{CmdSend, CmdQuality, CmdSwitch, CmdConfig, CmdStats, CmdMeasure, CmdStatus,
		CmdHistory, CmdTimeline, CmdQueue, CmdNext, CmdMonitorStart, CmdMonitorStop, CmdVerify, CmdPurge,
		CmdBudgetStatus, CmdBudgetSet, CmdBudgetReset}
}

// Error is the body of every error answer: a stable code and a message
// that says what to fix.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error returns "code: message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// EndpointRequest names an endpoint; "" means the only (or first) one.
// It is the request of transport.quality, .bandwidth.measure,
// .bandwidth.status and .bandwidth.monitor.stop.
type EndpointRequest struct {
	Endpoint string `json:"endpoint,omitempty"`
}

// SwitchRequest is transport.switch's request: To is "auto", a link class
// or a sync mode.
type SwitchRequest struct {
	Endpoint string `json:"endpoint,omitempty"`
	To       string `json:"to"`
}

// ConfigRequest is transport.config's request: empty shows the
// configuration; Class with Profile changes that class's sync parameters.
type ConfigRequest struct {
	Class   string            `json:"class,omitempty"`
	Profile *linkmon.Override `json:"profile,omitempty"`
}

// HistoryRequest is transport.bandwidth.history's request; Window is a Go
// duration ("10m"), default 10m.
type HistoryRequest struct {
	Endpoint string `json:"endpoint,omitempty"`
	Window   string `json:"window,omitempty"`
}

// HistoryResponse is transport.bandwidth.history's answer.
type HistoryResponse struct {
	Endpoint     string                `json:"endpoint"`
	Window       string                `json:"window"`
	Measurements []linkmon.Measurement `json:"measurements"`
}

// TimelineRequest is transport.bandwidth.timeline's request; Window is a
// Go duration ("10m"), default 10m, at most the hour the agent keeps. The
// answer is an agent.Timeline.
type TimelineRequest struct {
	Endpoint string `json:"endpoint,omitempty"`
	Window   string `json:"window,omitempty"`
}

// NextRequest is transport.bandwidth.sync.next's request. Action "" or
// "lease" leases the next op (of Priorities, if given) for TTL (a Go
// duration, default 5m); "ack" and "release" end the lease of op ID.
type NextRequest struct {
	Action     string   `json:"action,omitempty"`
	Endpoint   string   `json:"endpoint,omitempty"`
	Priorities []string `json:"priorities,omitempty"`
	TTL        string   `json:"ttl,omitempty"`
	ID         string   `json:"id,omitempty"`
}

// NextResponse answers an ack or release of transport.bandwidth.sync.next.
type NextResponse struct {
	Action string `json:"action"`
	ID     string `json:"id"`
}

// LeasedOp is the metadata of an op leased by transport.bandwidth.sync.next,
// sent as JSON in the X-Edge-Sync-Op header; the body is the payload.
type LeasedOp struct {
	ID           edgesync.OpID     `json:"id"`
	Endpoint     string            `json:"endpoint"`
	Key          string            `json:"key"`
	Priority     edgesync.Priority `json:"priority"`
	Kind         string            `json:"kind"`
	Size         int64             `json:"size"`
	Summary      []byte            `json:"summary,omitempty"`
	EnqueuedAt   time.Time         `json:"enqueued_at"`
	ExpiresAt    *time.Time        `json:"expires_at,omitempty"`
	LeaseExpires time.Time         `json:"lease_expires"`
}

// SendResponse answers transport.send and transport.bandwidth.sync.queue:
// the stored op.
type SendResponse struct {
	ID        edgesync.OpID     `json:"id"`
	Endpoint  string            `json:"endpoint"`
	Key       string            `json:"key,omitempty"`
	Priority  edgesync.Priority `json:"priority"`
	Kind      string            `json:"kind"`
	Size      int64             `json:"size"`
	ExpiresAt *time.Time        `json:"expires_at,omitempty"`
}

// expiresAt is an op's expiry as the answers carry it: nil for none.
func expiresAt(op outbox.Op) *time.Time {
	if op.ExpiresAt.IsZero() {
		return nil
	}
	t := op.ExpiresAt
	return &t
}

// OutboxStats summarises the outbox in transport.stats.
type OutboxStats struct {
	Ops        int                      `json:"ops"`
	Bytes      int64                    `json:"bytes"`
	Leased     int                      `json:"leased"`
	ByPriority map[string]agent.Backlog `json:"by_priority"`
	Drops      map[string]uint64        `json:"drops"`
	OldestAge  time.Duration            `json:"oldest_age_ns"`
	MaxOps     int                      `json:"max_ops"`
	MaxBytes   int64                    `json:"max_bytes"`
	// Quarantined counts the ops found damaged on disk, kept aside and
	// never sent (transport.outbox.verify lists them).
	Quarantined agent.Backlog `json:"quarantined"`
}

// VerifyResponse is transport.outbox.verify's answer: what the check of
// every op found; OK is false when an op was found damaged now or earlier
// (the quarantine is not empty).
type VerifyResponse struct {
	Agent string `json:"agent"`
	OK    bool   `json:"ok"`
	outbox.VerifyReport
}

// PurgeRequest is transport.outbox.purge's request: the IDs of
// quarantined ops to delete for good, or All.
type PurgeRequest struct {
	IDs []string `json:"ids,omitempty"`
	All bool     `json:"all,omitempty"`
}

// PurgeResponse says what transport.outbox.purge deleted.
type PurgeResponse struct {
	Ops   int   `json:"ops"`
	Bytes int64 `json:"bytes"`
}

// StatsResponse is transport.stats's answer.
type StatsResponse struct {
	Agent     string                `json:"agent"`
	Outbox    OutboxStats           `json:"outbox"`
	Endpoints []agent.EndpointStats `json:"endpoints"`
}

// Health is the answer of GET /v1/health.
type Health struct {
	Status    string   `json:"status"`
	Agent     string   `json:"agent"`
	Endpoints []string `json:"endpoints"`
}

// MonitorStartRequest is transport.bandwidth.monitor.start's request. An
// Endpoint the agent does not have is added at run time when Address (and
// optionally ServerName) are given; Monitor overrides the monitor settings
// of that endpoint.
type MonitorStartRequest struct {
	Endpoint   string            `json:"endpoint,omitempty"`
	Address    string            `json:"address,omitempty"`
	ServerName string            `json:"server_name,omitempty"`
	Monitor    *MonitorOverrides `json:"monitor,omitempty"`
}

// MonitorOverrides are the monitor settings a monitor.start may change;
// durations are like "5s" or "2d" (units.ParseDuration), unset fields keep the configured value.
type MonitorOverrides struct {
	ProbeInterval     string   `json:"probe_interval,omitempty"`
	SampleInterval    string   `json:"sample_interval,omitempty"`
	Window            string   `json:"window,omitempty"`
	ProbeTimeout      string   `json:"probe_timeout,omitempty"`
	MinSamples        int      `json:"min_samples,omitempty"`
	HysteresisPercent *float64 `json:"hysteresis_percent,omitempty"`
	ProbeBudget       *float64 `json:"probe_budget,omitempty"`
	Active            *bool    `json:"active,omitempty"`
	Passive           *bool    `json:"passive,omitempty"`
}

// start turns the request into the agent's StartMonitor argument, or an
// ErrBadRequest naming the field whose duration does not parse. The
// agent checks the ranges.
func (r MonitorStartRequest) start() (agent.MonitorStart, error) {
	ms := agent.MonitorStart{Endpoint: r.Endpoint, Address: r.Address, ServerName: r.ServerName}
	o := r.Monitor
	if o == nil {
		return ms, nil
	}
	ch := &ms.Monitor
	for _, d := range []struct {
		name string
		s    string
		dst  *time.Duration
	}{
		{"probe_interval", o.ProbeInterval, &ch.ProbeInterval},
		{"sample_interval", o.SampleInterval, &ch.SampleInterval},
		{"window", o.Window, &ch.Window},
		{"probe_timeout", o.ProbeTimeout, &ch.ProbeTimeout},
	} {
		if d.s == "" {
			continue
		}
		v, err := units.ParseDuration(d.s)
		if err != nil || v <= 0 {
			return ms, badRequest("monitor.%s %q: want a positive duration such as 5s", d.name, d.s)
		}
		*d.dst = v
	}
	ch.MinSamples = o.MinSamples
	ch.HysteresisPercent, ch.ProbeBudget = o.HysteresisPercent, o.ProbeBudget
	ch.Active, ch.Passive = o.Active, o.Passive
	return ms, nil
}
