package agent

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

// This file is backfill (docs/backfill.md): under summary-first
// parameters (satellite) an op of a priority in SyncParameters.Summaries
// sends its summary first, and its full data follows when the link has
// room: after every summary that waits, in priority order, oldest first
// within a priority, on streams whose urgency is the op's priority, so
// that critical and schema ops overtake it at a chunk boundary.

// rank is an op's place in the order full data goes in: priority, then
// age (ID).
type rank struct {
	prio edgesync.Priority
	id   edgesync.OpID
}

func rankOf(op outbox.Op) rank { return rank{op.Priority, op.ID} }

// last ranks after every op.
var last = rank{prio: edgesync.NumPriorities}

func compareRank(a, b rank) int {
	if c := cmp.Compare(a.prio, b.prio); c != 0 {
		return c
	}
	return a.id.Compare(b.id)
}

func (r rank) before(o rank) bool { return compareRank(r, o) < 0 }

// backfill is a session's backfill state: the leased ops whose summary the
// core has and whose full data waits its turn, in rank order, and what is
// in flight that decides when the next may start. Only the session's loop
// uses it, except preempt, which bulk transfers poll.
type backfill struct {
	queue []outbox.Op
	// summaries are the ranks of the summaries in flight: their ops join
	// the queue once stored, so nothing ranked after them starts first.
	summaries []rank
	// full and bulk count the ordinary ops in flight in full (backfill or
	// not), and those of more than one chunk, by priority.
	full, bulk [edgesync.NumPriorities]int
	// preempt is the most urgent priority waiting for the bulk slot
	// (NumPriorities if none): a bulk backfill of a less urgent priority
	// pauses for it at its next chunk boundary.
	preempt atomic.Int32
}

// push adds op, leased and its summary stored, in its place.
func (b *backfill) push(op outbox.Op) {
	op.SummarySent = true
	i, _ := slices.BinarySearchFunc(b.queue, op, func(a, o outbox.Op) int { return compareRank(rankOf(a), rankOf(o)) })
	b.queue = slices.Insert(b.queue, i, op)
}

// ids returns the queued ops' IDs, for a release.
func (b *backfill) ids() []edgesync.OpID {
	out := make([]edgesync.OpID, len(b.queue))
	for i, op := range b.queue {
		out[i] = op.ID
	}
	return out
}

// started and settled count an op of slot sl going out and coming back.
func (b *backfill) started(op outbox.Op, sl slot, summary bool) { b.count(op, sl, summary, 1) }
func (b *backfill) settled(op outbox.Op, sl slot, summary bool) { b.count(op, sl, summary, -1) }

func (b *backfill) count(op outbox.Op, sl slot, summary bool, n int) {
	switch {
	case sl == slotUrgent:
	case summary && n > 0:
		b.summaries = append(b.summaries, rankOf(op))
	case summary:
		if i := slices.Index(b.summaries, rankOf(op)); i >= 0 {
			b.summaries = slices.Delete(b.summaries, i, i+1)
		}
	default:
		b.full[op.Priority] += n
		if sl == slotBulk {
			b.bulk[op.Priority] += n
		}
	}
}

// ahead reports whether something must go before an op of rank r: a
// queued backfill op or a summary in flight ranked before it.
func (b *backfill) ahead(r rank) bool {
	return (len(b.queue) > 0 && rankOf(b.queue[0]).before(r)) || b.summaryBefore(r)
}

// summaryBefore reports whether a summary ranked before r is in flight.
func (b *backfill) summaryBefore(r rank) bool {
	return slices.ContainsFunc(b.summaries, func(x rank) bool { return x.before(r) })
}

// wantBulk records that an op of priority p waits for the bulk slot.
func (b *backfill) wantBulk(p edgesync.Priority) {
	if int32(p) < b.preempt.Load() {
		b.preempt.Store(int32(p))
	}
}

// pausable returns the pause check of a bulk backfill of priority p:
// paused (new sync parameters) or an op of a more urgent priority waits
// for its slot.
func (b *backfill) pausable(p edgesync.Priority, paused func() bool) func() bool {
	return func() bool {
		return (paused != nil && paused()) || b.preempt.Load() < int32(p)
	}
}

// isBackfill reports whether sending op in full under p is a backfill:
// its summary went first and the class still sends summaries first.
func isBackfill(op outbox.Op, p linkmon.SyncParameters) bool {
	return op.SummarySent && p.SummaryFirst(op.Priority)
}

// dispatchBackfill starts queued backfill ops ranked before limit, in
// order, while they may go:
//   - no summary ranked before them is in flight (summaries first, and
//     its op may rank ahead);
//   - no ordinary op of a more urgent priority is in flight in full, so
//     that full data arrives in priority order (a more urgent op may
//     start beside a less urgent one: it overtakes it);
//   - an op of more than one chunk goes alone among its priority's, and
//     pipelined small ones do not pass it;
//   - its slot is free (a less urgent bulk backfill pauses for it).
//
// A small op joins the open pack, or opens one, as an ordinary small op
// does, when the core granted wire.CapPackedBackfill (packable), within
// the pack budget (packFits).
func (s *session) dispatchBackfill(p linkmon.SyncParameters, limit rank, budget int64) {
	b := &s.bf
	for len(b.queue) > 0 {
		if s.fullHeld() {
			return // one op at a time to a core that refuses (corefull.go)
		}
		op := b.queue[0]
		r := rankOf(op)
		if !r.before(limit) || b.summaryBefore(r) {
			return
		}
		if !s.budgetSendsFull(op.Priority) {
			return // the data budget holds it, and what ranks after it (budget.go)
		}
		if op.Kind == edgesync.StateOp && s.keys[op.Key] {
			return // the key's older version is in flight
		}
		for q := edgesync.High; q < op.Priority; q++ {
			if b.full[q] > 0 {
				return
			}
		}
		bulk := op.Size > int64(p.ChunkSize)
		if (bulk && b.full[op.Priority] > 0) || (!bulk && b.bulk[op.Priority] > 0) {
			return
		}
		sl := slotSmall
		if bulk {
			sl = slotBulk
		}
		if s.pack != nil && !s.packFits(op, budget, false) {
			s.flushPack(p) // the budget is spent: the pack goes as it is
		}
		if s.joinPack(op, p, sl, false) {
			b.queue = slices.Delete(b.queue, 0, 1)
			s.packed(op)
			continue
		}
		if sl == slotSmall && s.inflight[sl] >= maxSmallInFlight {
			return
		}
		if sl == slotBulk && s.inflight[sl] >= p.Concurrency {
			b.wantBulk(op.Priority)
			return
		}
		if s.order.pendingBefore(op.Priority) {
			return // a more urgent stream started before it is not written yet (writeorder.go)
		}
		if sl == slotSmall && s.packable(op, p, false) {
			if !s.packFits(op, budget, true) {
				return // the packed bytes in flight are at their budget
			}
			b.queue = slices.Delete(b.queue, 0, 1)
			s.openPack(op, sl, false)
			s.packed(op)
			continue
		}
		b.queue = slices.Delete(b.queue, 0, 1)
		s.start(op, p, sl, false)
	}
}

// backfillParams are the parameters a backfill op is sent under: the
// class's, at the best compression level the CPU affords on this link
// (bestLevelFor).
func (s *session) backfillParams(p linkmon.SyncParameters) linkmon.SyncParameters {
	if !p.Compression {
		return p
	}
	p.Level = max(p.Level, bestLevelFor(s.e.mon.Status().Median.BandwidthBps))
	return p
}

// bestLevelFor returns linkmon.LevelBest when this machine compresses at
// that level at least cpuHeadroom times faster than the link carries
// (bit/s, 0 if unknown), else 0: the class's level stays.
func bestLevelFor(linkBps float64) int {
	if linkBps <= 0 {
		return 0
	}
	if bestLevelBps()*8 >= cpuHeadroom*linkBps {
		return linkmon.LevelBest
	}
	return 0
}

// cpuHeadroom is how many times faster than the link the best level must
// compress: a backfill shares the CPU with the producers and the rest of
// the agent, and never makes the link wait for the encoder.
const cpuHeadroom = 8

var bestLevelRate struct {
	once sync.Once
	bps  atomic.Int64 // plain bytes per second at codec.LevelBest
}

// bestLevelBps measures once per process how fast the codec compresses at
// its best level: one 256 KiB chunk of text-like data.
func bestLevelBps() float64 {
	bestLevelRate.once.Do(func() {
		const n = 256 << 10
		plain := make([]byte, n)
		for i := range plain {
			plain[i] = "sensor 17 pressure=3.21 flow=42 ok\n"[i%35] + byte(i/4096%7)
		}
		h, err := codec.NewHeader(codec.ModeZstd, codec.LevelBest, n, n, codec.Hash{}, nil)
		if err != nil {
			return
		}
		var enc codec.Encoder
		out, err := enc.EncodeChunk(nil, &h, 0, plain, nil) // warms the encoder up
		if err != nil {
			return
		}
		start := time.Now()
		if _, err := enc.EncodeChunk(out[:0], &h, 0, plain, nil); err != nil {
			return
		}
		took := max(time.Since(start), time.Microsecond)
		bestLevelRate.bps.Store(int64(float64(n) / took.Seconds()))
	})
	return float64(bestLevelRate.bps.Load())
}
