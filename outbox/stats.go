package outbox

import (
	"fmt"
	"slices"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// Count is a number of ops and their payload bytes.
type Count struct {
	Ops   int
	Bytes int64
}

// Stats is a snapshot of the outbox's contents and drop counters.
type Stats struct {
	Total      Count
	ByPriority [edgesync.NumPriorities]Count
	ByEndpoint map[string]Count
	// ByEndpointPriority splits each endpoint's count by priority.
	ByEndpointPriority map[string]*[edgesync.NumPriorities]Count
	// Summarized counts, of each endpoint's by priority, the ops whose
	// summary was sent (MarkSummarySent) and whose payload still waits.
	Summarized map[string]*[edgesync.NumPriorities]Count
	Leased     int
	// Oldest is the enqueue time of the oldest stored op (zero if empty);
	// OldestAge is its age by Options.Now.
	Oldest    time.Time
	OldestAge time.Duration
	// Drops counts drops since Open, indexed by Reason.
	Drops [NumReasons]uint64
	// DropsUnreported counts drops that found the Drops channel full.
	DropsUnreported uint64
	// Quarantined counts the ops in quarantine (damaged on disk, never
	// sent) and their payload bytes, including those of earlier runs;
	// they are not in Total. See Quarantined and PurgeQuarantined.
	Quarantined Count
	// MaxOps and MaxBytes are the configured limits.
	MaxOps   int
	MaxBytes int64
}

// Stats returns counts per priority and endpoint, the oldest op's age and
// the drop counters.
func (o *Outbox) Stats() (Stats, error) {
	now := o.opts.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return Stats{}, fmt.Errorf("stats: %w", ErrClosed)
	}
	s := Stats{
		ByEndpoint:         make(map[string]Count, len(o.idx.queues)),
		ByEndpointPriority: make(map[string]*[edgesync.NumPriorities]Count, len(o.idx.queues)),
		Summarized:         map[string]*[edgesync.NumPriorities]Count{},
		Drops:              o.counts, DropsUnreported: o.lost, Quarantined: o.quar,
		MaxOps: o.opts.MaxOps, MaxBytes: o.opts.MaxBytes,
	}
	for _, e := range o.idx.ops {
		op := &e.op
		s.Total.add(op.Size)
		s.ByPriority[op.Priority].add(op.Size)
		c := s.ByEndpoint[op.Endpoint]
		c.add(op.Size)
		s.ByEndpoint[op.Endpoint] = c
		countByPriority(s.ByEndpointPriority, op)
		if op.SummarySent {
			countByPriority(s.Summarized, op)
		}
		if e.leased {
			s.Leased++
		}
		if s.Oldest.IsZero() || op.EnqueuedAt.Before(s.Oldest) {
			s.Oldest = op.EnqueuedAt
		}
	}
	if !s.Oldest.IsZero() {
		s.OldestAge = now.Sub(s.Oldest)
	}
	return s, nil
}

// add counts one op of size payload bytes.
func (c *Count) add(size int64) {
	c.Ops++
	c.Bytes += size
}

// countByPriority counts op in m, under its endpoint and priority.
func countByPriority(m map[string]*[edgesync.NumPriorities]Count, op *Op) {
	c := m[op.Endpoint]
	if c == nil {
		c = new([edgesync.NumPriorities]Count)
		m[op.Endpoint] = c
	}
	c[op.Priority].add(op.Size)
}

// List returns up to limit ops of priority p in FIFO order, leased or not,
// for endpoint, or for every endpoint if endpoint is "". limit <= 0 means all.
func (o *Outbox) List(endpoint string, p edgesync.Priority, limit int) ([]Op, error) {
	if !p.Valid() {
		return nil, fmt.Errorf("list: priority %d: %w", uint8(p), ErrInvalid)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, fmt.Errorf("list: %w", ErrClosed)
	}
	var ids []edgesync.OpID
	if endpoint != "" {
		if q := o.idx.queues[endpoint]; q != nil {
			ids = q[p]
		}
	} else {
		for _, q := range o.idx.queues {
			ids = append(ids, q[p]...)
		}
		slices.SortFunc(ids, edgesync.OpID.Compare)
	}
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]Op, len(ids))
	for i, id := range ids {
		out[i] = o.idx.ops[id].op
	}
	return out, nil
}

// Get returns the metadata of op id, or ErrNotFound.
func (o *Outbox) Get(id edgesync.OpID) (Op, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return Op{}, fmt.Errorf("get: %w", ErrClosed)
	}
	e := o.idx.ops[id]
	if e == nil {
		return Op{}, fmt.Errorf("get %s: %w", id, ErrNotFound)
	}
	return e.op, nil
}
