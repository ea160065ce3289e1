package agent

import (
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
)

// packBudget is the bytes of packed ordinary ops the session may have in
// flight now: what the link carries in packWindow at the link monitor's
// median bandwidth, and minPackBudget at least (the bandwidth unmeasured).
func (s *session) packBudget() int64 {
	bw := s.e.mon.Status().Median.BandwidthBps // bit/s
	return max(minPackBudget, int64(bw/8*packWindow.Seconds()))
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
