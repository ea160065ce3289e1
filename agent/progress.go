package agent

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/outbox"
)

// This file counts the progress of the transfers in flight, so that
// transport.bandwidth.status (and the Go API's Transfers) can show how
// far each op got and when it will be done, at the rate it goes now.

// Transfer is an op being sent to an endpoint's core.
type Transfer struct {
	ID       edgesync.OpID     `json:"id"`
	Key      string            `json:"key"`
	Priority edgesync.Priority `json:"priority"`
	// Size is the op's payload in bytes; Sent how much of it the core
	// holds or the link has taken (plain bytes, before compression).
	Size int64 `json:"size"`
	Sent int64 `json:"sent"`
	// Started is when this attempt began.
	Started time.Time `json:"started"`
	// RateBps is the transfer's speed over the last seconds in bit/s of
	// payload; 0 until it has moved or while it is stalled.
	RateBps float64 `json:"rate_bps"`
	// ETA is the time left at RateBps; 0 when the rate is unknown.
	ETA time.Duration `json:"eta_ns"`
	// Backfill says the op's summary went first and this is its full
	// data (docs/backfill.md).
	Backfill bool `json:"backfill"`
}

// Progress sampling: a sample at most every progressSample, kept for the
// rate over the last progressWindow.
const (
	progressSample  = time.Second
	progressWindow  = 10 * time.Second
	progressSamples = int(progressWindow/progressSample) + 4
)

// progress is one transfer's counter. The sender's worker sets it; Status
// reads it. A nil *progress counts nothing.
type progress struct {
	op      outbox.Op
	started time.Time
	sent    atomic.Int64

	mu      sync.Mutex
	samples [progressSamples]progressPoint // ring, oldest at next when full
	n, next int
}

type progressPoint struct {
	at   time.Time
	sent int64
}

// resumed sets where this attempt starts: what the core already holds.
// It does not count as speed.
func (p *progress) resumed(held int64) {
	if p == nil {
		return
	}
	p.sent.Store(held)
	p.mu.Lock()
	p.n, p.next = 0, 0
	p.mu.Unlock()
	p.sample(time.Now(), held, true)
}

// done records that the payload up to offset end has left.
func (p *progress) done(end int64) {
	if p == nil {
		return
	}
	p.sent.Store(end)
	p.sample(time.Now(), end, false)
}

// doneChunk records that chunk i of ch has left.
func (p *progress) doneChunk(ch *codec.Header, i int64) {
	if p == nil {
		return
	}
	off, n, _ := ch.ChunkRange(i)
	p.done(off + int64(n))
}

func (p *progress) sample(now time.Time, sent int64, force bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !force && p.n > 0 {
		last := p.samples[(p.next+progressSamples-1)%progressSamples]
		if now.Sub(last.at) < progressSample {
			return
		}
	}
	p.samples[p.next] = progressPoint{at: now, sent: sent}
	p.next = (p.next + 1) % progressSamples
	p.n = min(p.n+1, progressSamples)
}

// snapshot is the transfer as Status shows it at now: the rate is what
// was sent since the oldest sample of the window (or the newest before
// it, for a transfer that stalled).
func (p *progress) snapshot(now time.Time) Transfer {
	t := Transfer{ID: p.op.ID, Key: p.op.Key, Priority: p.op.Priority, Size: p.op.Size, Sent: p.sent.Load(), Started: p.started, Backfill: p.op.SummarySent}
	p.mu.Lock()
	var ref progressPoint
	found := false
	for k := 0; k < p.n; k++ { // oldest first
		s := p.samples[(p.next-p.n+k+2*progressSamples)%progressSamples]
		ref, found = s, true
		if now.Sub(s.at) <= progressWindow {
			break
		}
	}
	p.mu.Unlock()
	if !found {
		return t
	}
	if secs := now.Sub(ref.at).Seconds(); secs >= 0.2 && t.Sent > ref.sent {
		rate := float64(t.Sent-ref.sent) / secs // bytes/s
		t.RateBps = rate * 8
		t.ETA = time.Duration(float64(max(0, t.Size-t.Sent)) / rate * float64(time.Second))
	}
	return t
}

// transfers are an endpoint's transfers in flight.
type transfers struct {
	mu sync.Mutex
	m  map[edgesync.OpID]*progress
}

// begin counts a new attempt at op; end forgets it.
func (ts *transfers) begin(op outbox.Op) *progress {
	p := &progress{op: op, started: time.Now()}
	p.sample(p.started, 0, true)
	ts.mu.Lock()
	if ts.m == nil {
		ts.m = map[edgesync.OpID]*progress{}
	}
	ts.m[op.ID] = p
	ts.mu.Unlock()
	return p
}

func (ts *transfers) end(id edgesync.OpID) {
	ts.mu.Lock()
	delete(ts.m, id)
	ts.mu.Unlock()
}

// list returns the transfers in flight, the largest first.
func (ts *transfers) list(now time.Time) []Transfer {
	ts.mu.Lock()
	ps := make([]*progress, 0, len(ts.m))
	for _, p := range ts.m {
		ps = append(ps, p)
	}
	ts.mu.Unlock()
	out := make([]Transfer, len(ps))
	for i, p := range ps {
		out[i] = p.snapshot(now)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Size != out[j].Size {
			return out[i].Size > out[j].Size
		}
		return out[i].ID.String() < out[j].ID.String()
	})
	return out
}

// Transfers returns the transfers in flight to an endpoint ("" is the
// default endpoint), the largest first, with their progress.
func (a *Agent) Transfers(endpoint string) ([]Transfer, error) {
	e, err := a.endpoint(endpoint)
	if err != nil {
		return nil, err
	}
	return e.transfers.list(time.Now()), nil
}
