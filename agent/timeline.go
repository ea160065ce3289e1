package agent

import (
	"context"
	"sync"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// The timeline: what the status page plots and transport.bandwidth.timeline
// answers. Once a second the agent records, per endpoint, the link figures
// the class was judged on, the class, the sync mode, whether it is
// connected and the queue per priority, in a ring of an hour's points.
// One goroutine records (recordTimeline, started by Start and waited for
// by Close); readers copy what they ask for.

// Timeline bounds: TimelineLength points TimelineInterval apart per
// endpoint, an hour. A point is 96 bytes in the ring, so an endpoint's
// timeline holds at most about 340 KiB, allocated as it fills.
const (
	TimelineInterval = time.Second
	TimelineLength   = 3600
)

// TimelinePoint is one second of an endpoint's link and queue.
type TimelinePoint struct {
	At        time.Time          `json:"at"`
	Connected bool               `json:"connected"`
	Class     edgesync.LinkClass `json:"class"`
	Mode      edgesync.SyncMode  `json:"mode"`
	// BandwidthBps, RTT and Loss are the median figures the class was
	// judged on (as transport.bandwidth.status's figures); zero when not
	// measured.
	BandwidthBps float64       `json:"bandwidth_bps"`
	RTT          time.Duration `json:"rtt_ns"`
	Loss         float64       `json:"loss"`
	// QueueOps and QueueBytes are the endpoint's ops waiting in the
	// outbox, by priority, most urgent first (Timeline.Priorities).
	QueueOps   [edgesync.NumPriorities]int   `json:"queue_ops"`
	QueueBytes [edgesync.NumPriorities]int64 `json:"queue_bytes"`
}

// Timeline is transport.bandwidth.timeline: an endpoint's points within a
// window, oldest first.
type Timeline struct {
	Endpoint string        `json:"endpoint"`
	Interval time.Duration `json:"interval_ns"`
	// Priorities names the order of every point's queue figures.
	Priorities []edgesync.Priority `json:"priorities"`
	Points     []TimelinePoint     `json:"points"`
}

// Timeline returns an endpoint's timeline within window (at most the
// last hour); the points are copies.
func (a *Agent) Timeline(endpoint string, window time.Duration) (Timeline, error) {
	e, err := a.endpoint(endpoint)
	if err != nil {
		return Timeline{}, err
	}
	out := Timeline{Endpoint: e.name, Interval: TimelineInterval, Priorities: edgesync.Priorities(), Points: []TimelinePoint{}}
	if r := a.timelines.of(e.name, false); r != nil {
		out.Points = r.since(time.Now().Add(-window))
	}
	return out, nil
}

// recordTimeline records a point per endpoint every TimelineInterval
// until ctx ends.
func (a *Agent) recordTimeline(ctx context.Context) {
	t := time.NewTicker(TimelineInterval)
	defer t.Stop()
	for {
		a.recordPoints(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recordPoints appends one point at now to every endpoint's timeline.
func (a *Agent) recordPoints(now time.Time) {
	st, err := a.ob.Stats()
	if err != nil {
		return // the outbox is closed: the agent is stopping
	}
	a.mu.Lock()
	eps := make([]*endpoint, 0, len(a.eps))
	for _, e := range a.eps {
		eps = append(eps, e)
	}
	a.mu.Unlock()
	for _, e := range eps {
		ls := e.mon.Snapshot()
		m := ls.Status.Median
		p := timelinePoint{
			at: now.UnixNano(), connected: e.conn.Load() != nil,
			class: uint8(ls.Class), mode: uint8(ls.Params.Mode),
			bw: float32(m.BandwidthBps), rttMicros: int32(min(m.RTT.Microseconds(), 1<<31-1)), loss: float32(m.Loss),
		}
		if bp := st.ByEndpointPriority[e.name]; bp != nil {
			for i, c := range bp {
				p.ops[i] = int32(min(c.Ops, 1<<31-1))
				p.bytes[i] = c.Bytes
			}
		}
		a.timelines.of(e.name, true).add(p)
	}
}

// timelinePoint is a TimelinePoint as the ring keeps it: 96 bytes.
type timelinePoint struct {
	at        int64 // Unix nanoseconds
	bw        float32
	rttMicros int32
	loss      float32
	class     uint8
	mode      uint8
	connected bool
	ops       [edgesync.NumPriorities]int32
	bytes     [edgesync.NumPriorities]int64
}

func (p *timelinePoint) export() TimelinePoint {
	out := TimelinePoint{
		At: time.Unix(0, p.at), Connected: p.connected,
		Class: edgesync.LinkClass(p.class), Mode: edgesync.SyncMode(p.mode),
		BandwidthBps: float64(p.bw), RTT: time.Duration(p.rttMicros) * time.Microsecond, Loss: float64(p.loss),
	}
	for i := range p.ops {
		out.QueueOps[i] = int(p.ops[i])
		out.QueueBytes[i] = p.bytes[i]
	}
	return out
}

// timelines holds a ring per endpoint name; an endpoint added at run time
// gets one at its first point. Safe for concurrent use.
type timelines struct {
	mu    sync.Mutex
	rings map[string]*timelineRing
}

// of returns the ring of endpoint name, made if create is set; nil when
// there is none.
func (t *timelines) of(name string, create bool) *timelineRing {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.rings[name]
	if r == nil && create {
		if t.rings == nil {
			t.rings = map[string]*timelineRing{}
		}
		r = &timelineRing{}
		t.rings[name] = r
	}
	return r
}

// timelineRing keeps the last TimelineLength points. Safe for concurrent
// use.
type timelineRing struct {
	mu    sync.Mutex
	pts   []timelinePoint // grows to TimelineLength, then wraps
	start int             // index of the oldest point once full
}

func (r *timelineRing) add(p timelinePoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.pts); n < TimelineLength {
		if n == cap(r.pts) {
			// Grown by hand, so that the ring never holds more than
			// TimelineLength points' worth.
			grown := make([]timelinePoint, n, min(max(64, 2*n), TimelineLength))
			copy(grown, r.pts)
			r.pts = grown
		}
		r.pts = append(r.pts, p)
		return
	}
	r.pts[r.start] = p
	r.start = (r.start + 1) % len(r.pts)
}

// since returns the points at or after from, oldest first.
func (r *timelineRing) since(from time.Time) []TimelinePoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	cut := from.UnixNano()
	out := []TimelinePoint{}
	for i := range r.pts {
		p := &r.pts[(r.start+i)%len(r.pts)]
		if p.at >= cut {
			out = append(out, p.export())
		}
	}
	return out
}
