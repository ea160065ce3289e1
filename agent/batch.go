package agent

import (
	"sync/atomic"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/linkmon"
)

// maxPeek bounds the ops the batcher leases to weigh what waits: more
// small ops than this, weighing less than a chunk together, wait for the
// interval.
const maxPeek = 256

// batcher is the sender's batch-interval policy for ordinary data (high to
// background; docs/design.md#batch-interval). The class's interval exists
// to amortise streams of small ops, so it holds only those, and only
// within the interval after the last batch that sent ordinary data. When
// the sender is between batches, ordinary ops start a batch at once if
//   - the interval is 0 (best effort),
//   - no batch sent ordinary data within the interval: the link has been
//     idle for that long, so nothing is saved by waiting, or
//   - the ops waiting weigh at least a chunk (one op alone or together).
//
// Otherwise they wait until the interval after the last batch. While a
// batch is open (ordinary ops in flight) new ops join it, as they always
// did. Its methods run on the session's goroutine; its counters are
// atomic for tests and stats.
type batcher struct {
	last    time.Time    // when the last batch that sent ordinary data drained
	batches atomic.Int64 // batches that sent ordinary data
	holds   atomic.Int64 // decisions that held waiting ops for the interval
}

// due returns when ops held now may go: the interval after the last batch
// (zero: at once).
func (b *batcher) due(interval time.Duration) time.Time {
	if b.last.IsZero() || interval <= 0 {
		return time.Time{}
	}
	return b.last.Add(interval)
}

// goNow reports whether ordinary ops waiting at now may open a batch under
// interval and chunk. weigh returns how many ops wait and their bytes,
// counting at least up to limit bytes where that many wait; it is called
// only when the interval does not decide alone.
func (b *batcher) goNow(now time.Time, interval time.Duration, chunk int, weigh func(limit int64) (int, int64)) bool {
	if !now.Before(b.due(interval)) {
		return true
	}
	ops, bytes := weigh(int64(chunk))
	if bytes >= int64(chunk) {
		return true
	}
	if ops > 0 {
		b.holds.Add(1)
	}
	return false
}

// drained records a batch that ended at now; sent is whether it started
// any ordinary op (a batch that found nothing, or only ops held for their
// summary, does not restart the interval).
func (b *batcher) drained(now time.Time, sent bool) {
	if sent {
		b.last = now
		b.batches.Add(1)
	}
}

// weigher returns the batcher's weigh function for a session under p: it
// leases the ordinary ops waiting, in the order the sender takes them,
// until they weigh limit bytes or maxPeek ops, gives them back, and
// returns their count and the bytes they would send under p: an op sent
// as its summary weighs its summary, and one whose summary is at the core
// nothing (it waits for a better class, not for the interval).
func (s *session) weigher(p linkmon.SyncParameters) func(limit int64) (int, int64) {
	return func(limit int64) (ops int, bytes int64) {
		var ids []edgesync.OpID
		defer func() { s.release(ids...) }()
		for len(ids) < maxPeek && bytes < limit {
			got, err := s.ob.Lease(s.name, 16, ordinary...)
			if err != nil || len(got) == 0 {
				break
			}
			for _, op := range got {
				ids = append(ids, op.ID)
				if s.budgetHolds(op.Priority) {
					continue // the batch would send none of it
				}
				// What the batch would send of it: its summary first
				// where the class sends summaries, then its full data
				// (backfill.go).
				size := op.Size
				if p.SummaryFirst(op.Priority) && !op.SummarySent {
					size += int64(len(op.Summary))
				}
				ops++
				bytes += size
			}
		}
		return ops, bytes
	}
}
