package linkmon

import "time"

// The path's base RTT and what it says about a delivery rate
// (docs/linkmon.md, "Under the agent's own load").
//
// A delivery rate is the link's capacity only while the link is the
// bottleneck, and a full link has a queue: the RTT rises above the path's
// base (BBR's min_rtt), at least while a rate-based sender probes for
// more. A sender held back by anything else (its rate model growing back
// after a path change, chunks it cannot produce fast enough, a round trip
// per commit) delivers less than the link without queueing at it: the
// demo's LTE step showed 1.2-4 Mbit/s for 10 s on a 10 Mbit/s link at
// its base RTT. Such a rate, well below the capacity estimate with no
// queue seen for a while, says only that the link carries at least that
// much: it is taken as a lower bound, which never lowers the estimate
// (BBR marks such samples app-limited). A drop of the link's own capacity
// under a sender that keeps sending queues at once, so it still counts.
//
// The same queue inflates the RTT that pings measure while the agent
// sends: a 50 Mbit/s, 40 ms, 1 % link showed 63 ms (up to 92) under a
// bulk transfer and went mobile (TestOwnQueueKeepsBroadband). While the
// agent's own data is in flight (a delivery rate, link-filling or a lower
// bound, within filledFor), the class and the figures shown take the
// path's base RTT (the minimum over baseRTTWindow) instead: the start-up
// overshoot queues before any rate says the link is full (190 ms on that
// link). A path whose RTT truly rises is still seen: at once while the
// agent sends nothing; while it sends, when every RTT of the last
// pathJumpFor is more than pathJump × the base before them (newPath),
// which starts the base afresh (TestPathRTTRiseSeenUnderLoad: 20 ms to
// 140 or 600 ms in about 3.6 s); a smaller rise after baseRTTWindow.

const (
	// baseRTTWindow is how long an RTT sample counts toward the base RTT
	// (BBR's min_rtt filter window).
	baseRTTWindow = 10 * time.Second
	// maxBaseRTTSamples bounds the tracker whatever the ping rate.
	maxBaseRTTSamples = 256
	// queueMargin is the least RTT above the base that counts as a queue
	// (timer noise and scheduling on a loaded machine are below it).
	queueMargin = 5 * time.Millisecond
	// queueShare: an RTT more than this share above the base counts as a
	// queue, on paths where a tenth is more than queueMargin.
	queueShare = 0.1
	// belowCapacity: a delivery rate under this share of the capacity
	// estimate needs a queue to count as the link's.
	belowCapacity = 0.8
	// queuePings is how many of the latest RTTs a queue is judged on.
	queuePings = 3
	// queueMemory: a queue seen within max(queueMemory, queueRounds ×
	// the base RTT) still counts. A rate-based sender pacing at the
	// link's rate queues only while it probes for more, one round in
	// eight (BBR's gain cycle), so a queue shows now and then, not in
	// every ping.
	queueMemory = 2 * time.Second
	queueRounds = 8
	// pathJump: RTTs all above this multiple of the base for pathJumpFor
	// are a new path, not a queue.
	pathJump    = 2.5
	pathJumpFor = 2 * time.Second
)

type rttAt struct {
	at  time.Time
	rtt time.Duration
}

// baseRTT is the minimum RTT over the last baseRTTWindow. Not safe for
// concurrent use: the sampler's goroutine owns it.
type baseRTT struct {
	s []rttAt
	// conn is the connection's own RTT before any data (seed), which
	// counts as one more sample for the window.
	conn rttAt
}

// seed takes rtt, the connection's minimum RTT at at (its handshake,
// before the agent's data), as the base until baseRTTWindow has passed
// or lower pings come. The agent sends what waits the moment a connection
// is up: every ping of the new connection then queues behind that data,
// and the base taken from them alone was the queue (36 ms on a 20 ms path
// for 3.5 s of a packed drain, TestPackedDrainStatusTrue), against which
// the link-filling data showed no queue and counted as sender-limited.
func (b *baseRTT) seed(at time.Time, rtt time.Duration) {
	if rtt > 0 {
		b.conn = rttAt{at, rtt}
	}
}

// add records an answered ping's RTT taken at at.
func (b *baseRTT) add(at time.Time, rtt time.Duration) {
	if rtt <= 0 {
		return
	}
	b.s = append(b.s, rttAt{at, rtt})
	i := 0
	for i < len(b.s) && (at.Sub(b.s[i].at) > baseRTTWindow || len(b.s)-i > maxBaseRTTSamples) {
		i++
	}
	if i > 0 {
		b.s = append(b.s[:0], b.s[i:]...)
	}
	if at.Sub(b.conn.at) > baseRTTWindow {
		b.conn = rttAt{}
	}
}

// min returns the base RTT: the second-lowest RTT of the window (the
// lowest while there is one), 0 without samples. One ping that crossed a
// path change half on the old path (65 ms between fiber's 10 and lte's
// 110) would otherwise stand as the new path's base for a whole window.
// The connection's seed, while it counts, is one lower bound more.
func (b *baseRTT) min() time.Duration {
	m := secondLowest(b.s)
	if c := b.conn.rtt; c > 0 && (m == 0 || c < m) {
		return c
	}
	return m
}

func secondLowest(s []rttAt) time.Duration {
	var lo, next time.Duration
	for _, r := range s {
		switch {
		case lo == 0 || r.rtt < lo:
			lo, next = r.rtt, lo
		case next == 0 || r.rtt < next:
			next = r.rtt
		}
	}
	if next == 0 {
		return lo
	}
	return next
}

// newPath reports whether every RTT of the last pathJumpFor (at least
// queuePings of them) lies above pathJump × the minimum before them: the
// path changed, and the base starts afresh from them. A sender's own queue
// does not last that long so high: a rate-based sender's start-up
// overshoot drains within a few round trips, and it keeps at most about
// one base RTT queued after.
func (b *baseRTT) newPath(now time.Time) bool {
	recent := 0
	for _, r := range b.s {
		if now.Sub(r.at) <= pathJumpFor {
			recent++
		}
	}
	before := secondLowest(b.s[:len(b.s)-recent])
	if before <= 0 || recent < queuePings {
		return false
	}
	for _, r := range b.s[len(b.s)-recent:] {
		if float64(r.rtt) <= pathJump*float64(before) {
			return false
		}
	}
	b.s = append(b.s[:0], b.s[len(b.s)-recent:]...)
	b.conn = rttAt{}
	return true
}

// reset forgets the samples (a new connection, the link back after an
// outage: the path may be another).
func (b *baseRTT) reset() { b.s, b.conn = b.s[:0], rttAt{} }

// queued reports whether the latest RTTs (rtts, oldest first) show a queue
// above base: their median more than max(queueMargin, queueShare × base,
// 2 × jitter) above it, but not above pathJump × base, which is a path
// that changed (newPath confirms it), not a queue: after a switch from
// fiber to LTE (10 to 110 ms) the lane's rate collapsed and its 3-4 Mbit/s
// counted as the link's. Without a base it reports true (nothing to judge
// by: the rate counts as it did before).
func queued(rtts []time.Duration, base, jitter time.Duration) bool {
	if base <= 0 || len(rtts) == 0 {
		return true
	}
	recent := median(rtts[max(0, len(rtts)-queuePings):])
	margin := max(queueMargin, time.Duration(queueShare*float64(base)), 2*jitter)
	return recent > base+margin && float64(recent) <= pathJump*float64(base)
}

// queueRecent reports whether a queue was seen (at lastQueue) recently
// enough for the delivery rate now to count as the link's.
func queueRecent(now, lastQueue time.Time, base time.Duration) bool {
	return !lastQueue.IsZero() && now.Sub(lastQueue) <= max(queueMemory, queueRounds*base)
}

// senderLimited reports whether a delivery rate bps, not marked
// app-limited by the sender, is nonetheless a lower bound: well below the
// capacity estimate capBps with no queue at the bottleneck.
func senderLimited(bps, capBps float64, queue bool) bool {
	return capBps > 0 && bps < belowCapacity*capBps && !queue
}
