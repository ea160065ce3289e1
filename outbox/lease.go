package outbox

import (
	"fmt"
	"slices"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	bolt "go.etcd.io/bbolt"
)

// Lease hands out up to max ops of endpoint that are not leased and not
// expired, in priority order (only prios if given), FIFO within a priority.
// Leases live in memory only: after a restart every unacked op is offered
// again. An op stays leased until Ack or Release.
func (o *Outbox) Lease(endpoint string, max int, prios ...edgesync.Priority) ([]Op, error) {
	if max < 0 {
		return nil, fmt.Errorf("lease: max %d is negative: %w", max, ErrInvalid)
	}
	for _, p := range prios {
		if !p.Valid() {
			return nil, fmt.Errorf("lease: priority %d: %w", uint8(p), ErrInvalid)
		}
	}
	if len(prios) == 0 {
		prios = edgesync.Priorities()
	} else {
		prios = slices.Clone(prios)
		slices.Sort(prios)
		prios = slices.Compact(prios)
	}
	now := o.opts.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, fmt.Errorf("lease: %w", ErrClosed)
	}
	q := o.idx.queues[endpoint]
	var out []Op
	for _, p := range prios {
		if q == nil || len(out) >= max {
			break
		}
		for _, id := range q[p] {
			if len(out) >= max {
				break
			}
			e := o.idx.ops[id]
			if e.leased || e.busy || expired(&e.op, now) {
				continue
			}
			e.leased = true
			out = append(out, e.op)
		}
	}
	return out, nil
}

func expired(op *Op, now time.Time) bool {
	return !op.ExpiresAt.IsZero() && !now.Before(op.ExpiresAt)
}

// Release returns leased ops to the queue; unknown or unleased IDs are ignored.
func (o *Outbox) Release(ids ...edgesync.OpID) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("release: %w", ErrClosed)
	}
	for _, id := range ids {
		if e := o.idx.ops[id]; e != nil {
			e.leased = false
		}
	}
	return nil
}

// Ack deletes delivered ops durably; it returns once the deletion is
// fsynced. IDs no longer stored (already acked or dropped) are ignored, so
// a repeated Ack is harmless.
func (o *Outbox) Ack(ids ...edgesync.OpID) error {
	if err := o.begin(); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	defer o.inflight.Done()
	o.mu.Lock()
	var mine []*entry
	for _, id := range ids {
		if e := o.idx.ops[id]; e != nil && !e.busy {
			o.idx.setBusy(e, true)
			mine = append(mine, e)
		}
	}
	o.mu.Unlock()
	if len(mine) == 0 {
		return nil
	}
	if err := o.deleteEntries(mine, nil); err != nil {
		return fmt.Errorf("ack: %w", err)
	}
	return nil
}

// deleteEntries deletes the ops of es, which the caller made busy, in one
// fsynced commit and takes them out of the index, calling removed (if not
// nil) for each with o.mu held; when the commit fails, it makes them
// available again and returns the error.
func (o *Outbox) deleteEntries(es []*entry, removed func(*entry)) error {
	err := o.commit.Do(func(tx *bolt.Tx) error {
		for _, e := range es {
			if err := deleteOp(tx, e.op.ID); err != nil {
				return err
			}
		}
		return nil
	})
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.idx.undo(es)
		return mapWriteErr(err)
	}
	for _, e := range es {
		o.idx.remove(e.op.ID)
		if removed != nil {
			removed(e)
		}
	}
	return nil
}

// MarkSummarySent records durably that op id's summary was sent, so that a
// restart does not send it again; the payload stays queued.
func (o *Outbox) MarkSummarySent(id edgesync.OpID) error {
	if err := o.begin(); err != nil {
		return fmt.Errorf("mark summary sent: %w", err)
	}
	defer o.inflight.Done()
	o.mu.Lock()
	e := o.idx.ops[id]
	if e == nil || e.busy {
		o.mu.Unlock()
		return fmt.Errorf("mark summary sent %s: %w", id, ErrNotFound)
	}
	if e.op.SummarySent {
		o.mu.Unlock()
		return nil
	}
	op := e.op
	o.mu.Unlock()
	op.SummarySent = true
	rec := encodeOp(&op)
	err := o.commit.Do(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOps)
		// The op may have been acked or dropped meanwhile: never resurrect it.
		if b.Get(id[:]) == nil {
			return ErrNotFound
		}
		return b.Put(id[:], rec)
	})
	if err != nil {
		return fmt.Errorf("mark summary sent %s: %w", id, mapWriteErr(err))
	}
	o.mu.Lock()
	if e := o.idx.ops[id]; e != nil {
		e.op.SummarySent = true
	}
	o.mu.Unlock()
	return nil
}

// PurgeExpired durably removes every op whose TTL ended at or before now,
// leased or not, reports each on Drops and returns them.
func (o *Outbox) PurgeExpired(now time.Time) ([]Drop, error) {
	if err := o.begin(); err != nil {
		return nil, fmt.Errorf("purge expired: %w", err)
	}
	defer o.inflight.Done()
	o.mu.Lock()
	var victims []*entry
	for _, e := range o.idx.ops {
		if !e.busy && expired(&e.op, now) {
			o.idx.setBusy(e, true)
			victims = append(victims, e)
		}
	}
	o.mu.Unlock()
	if len(victims) == 0 {
		return nil, nil
	}
	slices.SortFunc(victims, func(a, b *entry) int { return a.op.ID.Compare(b.op.ID) })
	drops := make([]Drop, 0, len(victims))
	err := o.deleteEntries(victims, func(e *entry) {
		d := dropOf(&e.op, ReasonExpired)
		drops = append(drops, d)
		o.emitLocked(d)
	})
	if err != nil {
		return nil, fmt.Errorf("purge expired: %w", err)
	}
	return drops, nil
}
