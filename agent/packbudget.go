package agent

import (
	"math"
	"time"

	"github.com/edge-sync/edge-sync/outbox"
)

// The packed ordinary ops in flight are bounded in bytes
// (docs/design.md, "Packing small ops"): a batch of packs leaves at once,
// like a large op, and a critical op put at that moment waits behind the
// bytes queued at the link's bottleneck. Before packing, 32 single small
// ops in flight held some 20-40 KB; the budget keeps packs to about that,
// or to what the link carries in packWindow where that is more, so that a
// critical op waits at most that long behind ordinary small ops. Packs
// still carry up to wire.MaxOpsPerStream ops each, so the wire bytes and
// streams they save are kept.
const (
	// packWindow is how long the link may take to carry the packed
	// ordinary bytes in flight, at its measured bandwidth.
	packWindow = 5 * time.Millisecond
	// minPackBudget is the budget's floor: what 32 single small ops of
	// about 1 KiB held in flight before packing.
	minPackBudget = 32 << 10
	// maxPackBudget is the budget's ceiling: what the small slots hold
	// in full packs (32 of 1 MiB), 32 MiB, what 54 Gbit/s carries in
	// packWindow.
	maxPackBudget = maxSmallInFlight * maxPackBytes
)

// packBudget is the bytes of packed ordinary ops the session may have in
// flight now: what the link carries in packWindow at the link monitor's
// median bandwidth (packBudgetAt).
func (s *session) packBudget() int64 {
	return packBudgetAt(s.e.mon.Status().Median.BandwidthBps)
}

// packBudgetAt is the budget at a median bandwidth of bw bit/s, within
// [minPackBudget, maxPackBudget]: the floor for a bandwidth unmeasured,
// not positive or not a finite number (a median of two samples with one
// timestamp reads +Inf or NaN), the ceiling for one past it. The bounds
// are checked as a float: Go's conversion of an out-of-range float to an
// integer gives what the machine gives (the floor on amd64, no bound on
// arm64).
func packBudgetAt(bw float64) int64 {
	b := bw / 8 * packWindow.Seconds()
	if math.IsNaN(b) || math.IsInf(b, 0) || b <= minPackBudget {
		return minPackBudget
	}
	return int64(min(b, maxPackBudget))
}

// packFits reports whether op may join the open pack of ordinary ops
// (open false) or open a new one (open true) within budget. One op always
// may when none is in flight, so the backlog moves. A new pack opens only
// once at most half the budget is in flight: the packs that follow a
// full budget carry at least half of it each, rather than a few ops each
// in the room one answered pack left.
func (s *session) packFits(op outbox.Op, budget int64, open bool) bool {
	if s.packBytes == 0 {
		return true
	}
	if open && s.packBytes > budget/2 {
		return false
	}
	return s.packBytes+op.Size <= budget
}

// packed counts op, put in the open pack of ordinary ops (slot small),
// against the budget; flushPack hands each op's count to its worker's
// answer, which gives it back (session.account). Counted by lease, not
// by op ID: a worker may give its op back to the outbox before it
// answers, and the op may be leased and packed again meanwhile.
func (s *session) packed(op outbox.Op) { s.packBytes += op.Size }
