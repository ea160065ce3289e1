package agent

import (
	"math"
	"time"

	"github.com/edge-sync/edge-sync/outbox"
)

// The packed ordinary ops in flight are bounded in bytes
// (docs/design.md, "Packing small ops"): a batch of packs leaves at once,
// like a large op, and a critical op put at that moment waits behind the
// bytes queued at the link's bottleneck. What fills the link is its
// bandwidth-delay product, and only what is in flight beyond it queues.
// A pack counts as in flight until its last byte has arrived and its
// answer has come back, so its own bytes are in flight for their
// serialisation on top of the round trip. The budget is what the link
// carries in its RTT and packWindow more, and minPackBudget on top, the
// room for a pack (packs hold at most that) beyond the link's product:
// the packs fill the link and a critical op waits behind about
// packWindow of the link and up to a pack. Packs still carry up to
// wire.MaxOpsPerStream ops of 512 B or less each, so most of the wire
// bytes and streams they save are kept.
const (
	// packWindow is how long the link may take to carry the packed
	// ordinary bytes in flight beyond its bandwidth-delay product and a
	// pack, at its measured bandwidth.
	packWindow = 5 * time.Millisecond
	// minPackBudget is the budget's floor and the room it leaves for a
	// pack: what 32 single small ops of about 1 KiB held in flight
	// before packing.
	minPackBudget = 32 << 10
	// maxPackBudget is the budget's ceiling: what the small slots hold
	// in full packs (32 of 1 MiB), 32 MiB, what 10 Gbit/s carries in
	// 27 ms.
	maxPackBudget = maxSmallInFlight * maxPackBytes
)

// packBudget is the bytes of packed ordinary ops the session may have in
// flight now (packBudgetAt): at the link monitor's median bandwidth and
// the connection's minimum RTT, quic-go's over the connection's life,
// the path's own. Not the monitor's RTT: its pings queue behind the
// packs, and a budget on their median grew with the queue it made (on a
// 10 Mbit/s link of 60 ms it read 155 ms within a second; critical ops
// waited 130-170 ms instead of 40-50, before the packs reported their
// deliveries to the monitor). The monitor's median RTT stands in while
// the connection has measured none. A pack is in flight until the core
// has stored and answered it, longer than the path's round trip: the RTT
// is the least time a pack (or a stream of summaries) took from its
// write to its first answer on this connection (packAnswerMin), when
// that is longer. On the path's RTT alone the packs carried 6-14 Mbit/s
// of a 20 Mbit/s link and 4-9 of a 10 Mbit/s one on a loaded machine
// (TestPackedDrainStatusTrue: 18 MiB drained in 14-18 s on the 20
// Mbit/s link; 10 s with it). The least over the connection, not over a
// recent span: once the packs fill the link, every later answer waits
// behind their queue too, and a budget on it would grow with the queue
// it makes, as one on the monitor's RTT did. The bandwidth is the
// monitor's: the packs' own delivery rate never lowers it, since their
// sender marks itself app-limited where this budget holds it back
// (heldBack; docs/linkmon.md, "Under the agent's own load"); had it
// counted as the link's, the budget would have followed its own rate
// down (4.3 Mbit/s on a 10 Mbit/s link).
func (s *session) packBudget() int64 {
	m := s.e.mon.Status().Median
	rtt := m.RTT
	if s.conn != nil {
		if r := s.conn.ConnectionStats().MinRTT; r > 0 {
			rtt = r
		}
	}
	if a := time.Duration(s.packAnswerMin.Load()); a > rtt {
		rtt = min(a, maxAnswerInflation*rtt)
	}
	return packBudgetAt(m.BandwidthBps, rtt)
}

// packDelivered reports a stream of several ops or summaries delivered
// (answerDelivered): its n bytes to the link monitor, and the time from
// its write to its first answer, took, into packAnswerMin. Workers call
// it; the session's loop reads packAnswerMin.
func (s *session) packDelivered(n int, took time.Duration) {
	s.e.delivered(n)
	for {
		old := s.packAnswerMin.Load()
		if old > 0 && int64(took) >= old || s.packAnswerMin.CompareAndSwap(old, int64(took)) {
			return
		}
	}
}

// maxAnswerInflation bounds the RTT the pack budget takes from the
// packs' answer time, as a multiple of the path's: the budget grows to at
// most twice the link's product, and a critical op waits behind at most
// one round trip of the link more than on the path's RTT alone. A pack's
// answer time counts its own serialisation, which at 1 Mbit/s is 260 ms
// for a pack of minPackBudget: uncapped, the critical ops of
// TestCriticalNotBehindPacks took 264-402 ms instead of 152-269
// (docs/linkmon.md, "Packed small ops").
const maxAnswerInflation = 2

// packBudgetAt is the budget at a median bandwidth of bw bit/s and an RTT
// of rtt: what bw carries in rtt + packWindow, and minPackBudget more, at
// most maxPackBudget. A bandwidth unmeasured, not positive or not a
// finite number (a median of two samples with one timestamp reads +Inf
// or NaN) gives minPackBudget; an RTT unmeasured (0) or negative counts
// as none. The ceiling is applied as a float: a product past the float's
// range is +Inf, and Go's conversion of an out-of-range float to an
// integer gives what the machine gives (the floor on amd64, no bound on
// arm64).
func packBudgetAt(bw float64, rtt time.Duration) int64 {
	if math.IsNaN(bw) || math.IsInf(bw, 0) || bw <= 0 {
		return minPackBudget
	}
	b := bw/8*(max(rtt, 0).Seconds()+packWindow.Seconds()) + minPackBudget
	return int64(min(b, maxPackBudget))
}

// packFits reports whether op may join the open pack of ordinary ops
// (open false) or open a new one (open true) within budget. One op always
// may when none is in flight, so the backlog moves. A pack holds at most
// half the budget, so that the next one goes while it is in flight (one
// pack of a whole budget left the link idle from its last byte until its
// answer, each round trip), and at most minPackBudget, the room the
// budget leaves for a pack beyond the link's product: a critical op
// waits behind at most one such pack. A new pack opens only once the
// room left is half the budget or minPackBudget, the less: the packs
// that follow a full budget carry that much each, rather than a few ops
// each in the room one answered pack left.
func (s *session) packFits(op outbox.Op, budget int64, open bool) bool {
	if s.packBytes == 0 {
		return true
	}
	if open {
		return budget-s.packBytes >= min(budget/2, minPackBudget) && s.packBytes+op.Size <= budget
	}
	return s.packBytes+op.Size <= budget && (s.pack == nil || s.pack.bytes+op.Size <= min(budget/2, minPackBudget))
}

// packAnswered is the report that gives back what a pack's ops held of
// the budget once the core has answered them (or the stream failed),
// before they are settled with the outbox: settling 32 ops took 15-95 ms
// of the outbox's writes, time in which nothing of the pack is on the
// link. An op of the pack sent alone after it (its encoded data too
// large for a pack) is not counted then.
func packAnswered(ops []outbox.Op) workerDone {
	d := workerDone{answered: true}
	for _, op := range ops {
		d.packed += op.Size
	}
	return d
}

// packed counts op, put in the open pack of ordinary ops (slot small),
// against the budget; flushPack hands each op's count to its worker's
// answer, which gives it back (session.account). Counted by lease, not
// by op ID: a worker may give its op back to the outbox before it
// answers, and the op may be leased and packed again meanwhile.
func (s *session) packed(op outbox.Op) { s.packBytes += op.Size }
