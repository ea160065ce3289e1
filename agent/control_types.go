package agent

import (
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// This file holds the request and response shapes of the control API, so
// that `edge-sync ctl` and other clients share them. docs/control-api.md
// documents each command with examples.

// Command names of the control API, as in docs/design.md#control-api-commands.
const (
	CmdSend         = "transport.send"
	CmdQuality      = "transport.quality"
	CmdSwitch       = "transport.switch"
	CmdConfig       = "transport.config"
	CmdStats        = "transport.stats"
	CmdMeasure      = "transport.bandwidth.measure"
	CmdStatus       = "transport.bandwidth.status"
	CmdHistory      = "transport.bandwidth.history"
	CmdQueue        = "transport.bandwidth.sync.queue"
	CmdNext         = "transport.bandwidth.sync.next"
	CmdMonitorStart = "transport.bandwidth.monitor.start"
	CmdMonitorStop  = "transport.bandwidth.monitor.stop"
)

// ControlCommands lists the command names in the order of
// docs/design.md#control-api-commands.
func ControlCommands() []string {
	return []string{CmdSend, CmdQuality, CmdSwitch, CmdConfig, CmdStats, CmdMeasure, CmdStatus,
		CmdHistory, CmdQueue, CmdNext, CmdMonitorStart, CmdMonitorStop}
}

// ControlError is the body of every error answer: a stable code and a
// message that says what to fix.
type ControlError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error returns "code: message".
func (e *ControlError) Error() string { return e.Code + ": " + e.Message }

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

func opTimes(op outbox.Op) *time.Time {
	if op.ExpiresAt.IsZero() {
		return nil
	}
	t := op.ExpiresAt
	return &t
}

// OutboxStats summarises the outbox in transport.stats.
type OutboxStats struct {
	Ops        int                `json:"ops"`
	Bytes      int64              `json:"bytes"`
	Leased     int                `json:"leased"`
	ByPriority map[string]Backlog `json:"by_priority"`
	Drops      map[string]uint64  `json:"drops"`
	OldestAge  time.Duration      `json:"oldest_age_ns"`
	MaxOps     int                `json:"max_ops"`
	MaxBytes   int64              `json:"max_bytes"`
}

// StatsResponse is transport.stats's answer.
type StatsResponse struct {
	Agent     string          `json:"agent"`
	Outbox    OutboxStats     `json:"outbox"`
	Endpoints []EndpointStats `json:"endpoints"`
}

// Health is the answer of GET /v1/health.
type Health struct {
	Status    string   `json:"status"`
	Agent     string   `json:"agent"`
	Endpoints []string `json:"endpoints"`
}
