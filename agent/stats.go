package agent

import (
	"sync/atomic"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/wire"
)

const numCodecModes = int(codec.ModeSummary) + 1

// endpointStats are an endpoint's counters; the sender writes them, Stats
// and /metrics read them.
type endpointStats struct {
	connects, dialFailures  atomic.Int64
	paused, retries, parked atomic.Int64
	laneOps, laneBytes      atomic.Int64 // acknowledged ops whose data went on the lane
	packs, packedOps        atomic.Int64 // streams that carried several ops, and their ops

	acked      [edgesync.NumPriorities]atomic.Int64 // ops acknowledged by the core
	plainBytes [edgesync.NumPriorities]atomic.Int64 // payload bytes of acknowledged ops
	latencySum [edgesync.NumPriorities]atomic.Int64 // enqueue → ack, nanoseconds
	latencyMax [edgesync.NumPriorities]atomic.Int64

	opsByMode  [numCodecModes]atomic.Int64 // transfers by codec mode of their header
	wireByMode [numCodecModes]atomic.Int64 // encoded bytes put in DATA frames, by mode
	rawByMode  [numCodecModes]atomic.Int64 // plain bytes those frames carried
	summaries  atomic.Int64
	summaryRaw atomic.Int64 // payload bytes held back while their summary went
	// backfilled counts the ops stored in full after their summary, and
	// backfilledRaw their payload bytes (backfill.go).
	backfilled, backfilledRaw atomic.Int64

	nacks [otherNacks + 1]atomic.Int64 // by wire.Code; codes from otherNacks up share the last

	lastErr lastError // the last failure to connect, or lost connection
}

// PriorityStats are the counters of one priority.
type PriorityStats struct {
	Acked      int64         `json:"acked"`
	Bytes      int64         `json:"bytes"`
	AvgLatency time.Duration `json:"avg_latency_ns"`
	MaxLatency time.Duration `json:"max_latency_ns"`
}

// ModeStats are the counters of one codec mode.
type ModeStats struct {
	Ops        int64 `json:"ops"`
	PlainBytes int64 `json:"plain_bytes"`
	WireBytes  int64 `json:"wire_bytes"`
}

// EndpointStats is a snapshot of an endpoint's counters.
type EndpointStats struct {
	Endpoint     string                   `json:"endpoint"`
	Connected    bool                     `json:"connected"`
	Connects     int64                    `json:"connects"`
	DialFailures int64                    `json:"dial_failures"`
	ModeSwitches int64                    `json:"mode_switches"`
	Paused       int64                    `json:"paused"`
	Retries      int64                    `json:"retries"`
	Parked       int64                    `json:"parked"`
	Lane         bool                     `json:"lane"`       // the connection has a data lane
	LaneOps      int64                    `json:"lane_ops"`   // acknowledged ops whose data went on the lane
	LaneBytes    int64                    `json:"lane_bytes"` // encoded bytes those ops put on the lane
	Packs        int64                    `json:"packs"`      // streams that carried several small ops or summaries (wire.CapOpsPerStream, CapSummariesPerStream)
	PackedOps    int64                    `json:"packed_ops"` // ops (or their summaries) sent on those streams
	Summaries    int64                    `json:"summaries"`
	SummaryBytes int64                    `json:"summary_held_bytes"`
	Priorities   map[string]PriorityStats `json:"priorities"`
	Modes        map[string]ModeStats     `json:"modes"`
	Nacks        map[string]int64         `json:"nacks"`

	// Backfilled counts the ops stored in full after their summary went
	// first (docs/backfill.md), BackfilledBytes their payload bytes.
	Backfilled      int64 `json:"backfilled"`
	BackfilledBytes int64 `json:"backfilled_bytes"`
	// SummaryHeld are, per ordinary priority, the ops in the outbox whose
	// summary went first and whose full data waits or is on its way.
	SummaryHeld map[string]Backlog `json:"summary_held"`
}

func (e *endpoint) snapshot() EndpointStats {
	s := &e.stats
	out := EndpointStats{
		Endpoint:     e.name,
		Connected:    e.conn.Load() != nil,
		Connects:     s.connects.Load(),
		DialFailures: s.dialFailures.Load(),
		ModeSwitches: e.mon.Stats().ModeSwitches,
		Paused:       s.paused.Load(),
		Retries:      s.retries.Load(),
		Parked:       s.parked.Load(),
		Lane:         e.lane.Load() != nil,
		LaneOps:      s.laneOps.Load(),
		LaneBytes:    s.laneBytes.Load(),
		Packs:        s.packs.Load(),
		PackedOps:    s.packedOps.Load(),
		Summaries:    s.summaries.Load(),
		SummaryBytes: s.summaryRaw.Load(),
		Priorities:   map[string]PriorityStats{},
		Modes:        map[string]ModeStats{},
		Nacks:        map[string]int64{},
	}
	out.Backfilled, out.BackfilledBytes = s.backfilled.Load(), s.backfilledRaw.Load()
	for _, p := range edgesync.Priorities() {
		n := s.acked[p].Load()
		ps := PriorityStats{Acked: n, Bytes: s.plainBytes[p].Load(), MaxLatency: time.Duration(s.latencyMax[p].Load())}
		if n > 0 {
			ps.AvgLatency = time.Duration(s.latencySum[p].Load() / n)
		}
		out.Priorities[p.String()] = ps
	}
	for m := codec.ModeFull; m <= codec.ModeDeltaZstd; m++ {
		if ops := s.opsByMode[m].Load(); ops > 0 {
			out.Modes[m.String()] = ModeStats{Ops: ops, PlainBytes: s.rawByMode[m].Load(), WireBytes: s.wireByMode[m].Load()}
		}
	}
	for c := range s.nacks {
		if n := s.nacks[c].Load(); n > 0 {
			out.Nacks[nackLabel(wire.Code(c))] = n
		}
	}
	return out
}

func (s *endpointStats) recordAck(p edgesync.Priority, bytes int64, latency time.Duration) {
	s.acked[p].Add(1)
	s.plainBytes[p].Add(bytes)
	s.latencySum[p].Add(int64(latency))
	for {
		cur := s.latencyMax[p].Load()
		if int64(latency) <= cur || s.latencyMax[p].CompareAndSwap(cur, int64(latency)) {
			return
		}
	}
}

func (s *endpointStats) recordTransfer(m codec.Mode, plain, wireBytes int64) {
	if int(m) >= numCodecModes {
		return
	}
	s.opsByMode[m].Add(1)
	s.rawByMode[m].Add(plain)
	s.wireByMode[m].Add(wireBytes)
}

func (s *endpointStats) recordNack(c wire.Code) {
	s.nacks[min(c, otherNacks)].Add(1)
}

// otherNacks is the first code this agent does not know (a newer core's):
// those are counted together, as "other", where they went uncounted.
const otherNacks = wire.CodeStoreFull + 1

// nackLabel is the name code c is counted under in the nacks by code.
func nackLabel(c wire.Code) string {
	if c >= otherNacks {
		return "other"
	}
	return c.String()
}

// Stats returns a snapshot of every endpoint's counters.
func (a *Agent) Stats() []EndpointStats {
	eps := a.endpointList()
	out := make([]EndpointStats, len(eps))
	for i, e := range eps {
		out[i] = e.snapshot()
	}
	a.summaryHeld(out)
	return out
}
