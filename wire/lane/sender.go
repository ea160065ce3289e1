package lane

import (
	"math"
	"sort"
	"time"
)

// MaxOpenTransfers is how many Send calls may be in flight per session;
// further Sends wait. The receiver refuses data of more open transfers.
const MaxOpenTransfers = 64

// MaxSendBytes is the most one Send call carries (the frame offset is 32-bit).
const MaxSendBytes = 1<<32 - 1

// transfer is the sender's state of one Send call.
type transfer struct {
	num     uint32
	id      [16]byte
	base    int64
	data    []byte
	urgency int8

	segs   int
	acked  []uint64 // bitset over segments
	nAcked int
	next   int      // next segment never sent
	retx   []int    // segments to send again, in order
	queued []uint64 // bitset: segment is in retx

	done     chan error // receives once, buffered
	finished bool
	reset    bool // abandoned: a reset is pending until the peer closes it
}

func bitGet(b []uint64, i int) bool { return b[i>>6]&(1<<(uint(i)&63)) != 0 }
func bitSet(b []uint64, i int)      { b[i>>6] |= 1 << (uint(i) & 63) }

// sendable reports whether the transfer has a segment to put on the wire.
func (t *transfer) sendable() bool {
	return !t.reset && !t.finished && (len(t.retx) > 0 || t.next < t.segs)
}

// sentPacket is the sender's record of one packet.
type sentPacket struct {
	pn        uint64
	sent      time.Time
	size      int
	t         *transfer // nil for packets without data
	seg       int
	eliciting bool
	inflight  bool // counted in bytesInFlight until acked or lost
	// silent: declared lost by timeout with no later packet acked, as
	// after a path change to a longer RTT; its record is kept a while for
	// a late ack (trim).
	silent bool

	delivered     int64
	deliveredTime time.Time
	firstSent     time.Time
	appLimited    bool
}

// sender holds everything about the outgoing direction. Guarded by
// Session.mu.
type sender struct {
	payload  int // data bytes per segment
	payload0 int // data bytes of segment 0 (which carries the meta)

	nextNum   uint32
	transfers []*transfer // open, sorted by (urgency, num)
	resets    map[uint32]*transfer
	lastReset time.Time

	nextPN  uint64
	sent    []sentPacket // by pn, from sent[0].pn upwards
	inBytes int          // bytes in flight

	delivered     int64
	deliveredTime time.Time
	firstSent     time.Time
	appLimited    bool

	srtt, rttvar time.Duration
	latestRTT    time.Duration // the last sample
	hasRTT       bool
	largestAcked uint64
	hasAcked     bool
	lastAckAt    time.Time
	lastElicit   time.Time
	peerWindow   int64

	m *model

	nextSend time.Time

	stats senderStats
}

type senderStats struct {
	packets, retransmits, lost, spurious, pings int64
	bytesAcked                                  int64
}

func newSender(packetSize int, rtt time.Duration, hint, maxRate float64, now time.Time) *sender {
	p := packetSize - headerLen - aeadOverhead - dataHeaderLen
	s := &sender{
		payload:    p,
		payload0:   p - metaLen,
		resets:     map[uint32]*transfer{},
		srtt:       rtt,
		rttvar:     rtt / 2,
		peerWindow: math.MaxInt64,
		nextSend:   now,
	}
	s.m = newModel(packetSize, rtt, hint, maxRate, now)
	return s
}

// segments returns how many segments n bytes need.
func (s *sender) segments(n int) int {
	if n <= s.payload0 {
		return 1
	}
	return 1 + (n-s.payload0+s.payload-1)/s.payload
}

// segRange returns the byte range of segment i of a transfer of n bytes.
func (s *sender) segRange(i, n int) (int, int) {
	if i == 0 {
		return 0, min(n, s.payload0)
	}
	lo := s.payload0 + (i-1)*s.payload
	return lo, min(n, lo+s.payload)
}

// add opens a transfer.
func (s *sender) add(t *transfer) {
	t.num = s.nextNum
	s.nextNum++
	t.segs = s.segments(len(t.data))
	words := (t.segs + 63) / 64
	t.acked = make([]uint64, words)
	t.queued = make([]uint64, words)
	i := sort.Search(len(s.transfers), func(i int) bool {
		o := s.transfers[i]
		return o.urgency > t.urgency || (o.urgency == t.urgency && o.num > t.num)
	})
	s.transfers = append(s.transfers, nil)
	copy(s.transfers[i+1:], s.transfers[i:])
	s.transfers[i] = t
}

func (s *sender) remove(t *transfer) {
	for i, o := range s.transfers {
		if o == t {
			s.transfers = append(s.transfers[:i], s.transfers[i+1:]...)
			return
		}
	}
}

// pick returns the transfer whose segment goes next: the lowest urgency
// value with something to send, the oldest transfer first among equal
// urgencies. Oldest first, not round-robin: the agent keeps one op's data
// in flight as a queue of consecutive transfers and refills it as the
// oldest completes; sent side by side they would all complete at the end
// and leave the queue empty while the next is encoded.
func (s *sender) pick() *transfer {
	for _, t := range s.transfers {
		if t.sendable() {
			return t
		}
	}
	return nil
}

// nextSegment takes the next segment of t: a retransmission first. It
// returns -1 when nothing is left (the queued retransmissions were all
// acknowledged meanwhile, by late acks).
func (s *sender) nextSegment(t *transfer) (seg int, retx bool) {
	for len(t.retx) > 0 {
		seg = t.retx[0]
		t.retx = t.retx[1:]
		t.queued[seg>>6] &^= 1 << (uint(seg) & 63)
		if !bitGet(t.acked, seg) {
			return seg, true
		}
	}
	if t.next >= t.segs {
		return -1, false
	}
	seg = t.next
	t.next++
	return seg, false
}

// record adds a sent packet and updates delivery-rate state.
func (s *sender) record(p sentPacket, now time.Time) {
	if p.eliciting {
		if s.inBytes == 0 {
			s.firstSent, s.deliveredTime = now, now
		}
		p.inflight = true
		p.delivered = s.delivered
		p.deliveredTime = s.deliveredTime
		p.firstSent = s.firstSent
		p.appLimited = s.appLimited
		s.inBytes += p.size
		s.lastElicit = now
		s.m.onSent()
	}
	s.sent = append(s.sent, p)
	s.stats.packets++
}

// find returns the record of pn, or nil.
func (s *sender) find(pn uint64) *sentPacket {
	if len(s.sent) == 0 || pn < s.sent[0].pn {
		return nil
	}
	i := pn - s.sent[0].pn
	if i >= uint64(len(s.sent)) {
		return nil
	}
	return &s.sent[i]
}

// onFeedback processes acknowledgements and returns transfers that the
// peer reports closed.
func (s *sender) onFeedback(fb *feedback, now time.Time) {
	if len(fb.acks) > 0 {
		s.onAcks(fb, now)
	}
	s.peerWindow = int64(min(fb.window, math.MaxInt64))
	s.detectLoss(now)
	s.trim(now)
}

// lostKeep is how long at least the record of a packet declared lost in
// silence (no later packet acked) is kept for its acknowledgement; a
// packet lost while acks flow is dropped at once, so that a fast lossy
// link's records stay short. After a path change to a longer RTT
// (broadband to satellite) every packet is declared lost before its ack
// can come, and an ack for a packet no longer recorded was ignored, so
// the lane sent the same data again for ever (the demo's stalled op).
const lostKeep = 4 * time.Second

func (s *sender) onAcks(fb *feedback, now time.Time) {
	largest := fb.acks[0].hi
	var newest *sentPacket
	// A packet declared lost too early (the RTT grew: a path change) still
	// gives a true sample when its ack comes; without it the estimate
	// would never learn the longer RTT (trim keeps such packets a while).
	if p := s.find(largest); p != nil && p.eliciting && p.size != 0 && (!s.hasAcked || largest > s.largestAcked) {
		rtt := now.Sub(p.sent)
		delay := time.Duration(fb.ackDelayMicros) * time.Microsecond
		if delay < rtt && delay < 200*time.Millisecond {
			rtt -= delay
		}
		s.updateRTT(rtt)
		s.m.onRTT(rtt, now)
	}
	if !s.hasAcked || largest > s.largestAcked {
		s.largestAcked, s.hasAcked = largest, true
		s.lastAckAt = now
	}
	for _, r := range fb.acks {
		if len(s.sent) == 0 {
			break
		}
		lo := max(r.lo, s.sent[0].pn)
		hi := min(r.hi, s.sent[0].pn+uint64(len(s.sent))-1)
		for pn := lo; pn <= hi && lo <= hi; pn++ {
			p := &s.sent[pn-s.sent[0].pn]
			if !p.eliciting || p.size == 0 {
				continue
			}
			if p.inflight {
				s.inBytes -= p.size
				p.inflight = false
			} else {
				s.stats.spurious++ // declared lost, arrived after all
			}
			s.delivered += int64(p.size)
			s.deliveredTime = now
			if newest == nil || p.sent.After(newest.sent) || p.pn > newest.pn {
				newest = p
			}
			if p.t != nil && !p.t.finished && !bitGet(p.t.acked, p.seg) {
				bitSet(p.t.acked, p.seg)
				p.t.nAcked++
				lo, hi := s.segRange(p.seg, len(p.t.data))
				s.stats.bytesAcked += int64(hi - lo)
			}
			p.size = 0 // acked: never count again
		}
	}
	if newest == nil {
		return
	}
	// Delivery rate (draft-cheng-iccrg-delivery-rate-estimation).
	interval := max(now.Sub(newest.deliveredTime), newest.sent.Sub(newest.firstSent))
	s.firstSent = newest.sent
	rate := 0.0
	if interval > 0 && interval >= s.m.minRTT/2 {
		rate = float64(s.delivered-newest.delivered) / interval.Seconds()
	}
	s.m.onAck(rate, newest.appLimited, newest.delivered, s.delivered, float64(s.inBytes), now)
}

func (s *sender) updateRTT(rtt time.Duration) {
	s.latestRTT = rtt
	if !s.hasRTT {
		s.srtt, s.rttvar, s.hasRTT = rtt, rtt/2, true
		return
	}
	d := s.srtt - rtt
	if d < 0 {
		d = -d
	}
	s.rttvar = (3*s.rttvar + d) / 4
	s.srtt = (7*s.srtt + rtt) / 8
}

// pto is how long an unacknowledged packet may be outstanding before it is
// declared lost even without later acknowledgements (tail loss).
func (s *sender) pto() time.Duration {
	return s.srtt + max(4*s.rttvar, 10*time.Millisecond) + maxAckDelay
}

// lossDelay is how long after a packet was sent it may be declared lost
// for time: 9/8 of the larger of the smoothed and the latest RTT (RFC 9002,
// 6.1.2). With the smoothed RTT alone, an RTT rising with the lane's own
// queue (probe_bw's 1.25 phase, startup) declared packets at a transfer's
// tail lost while their acks were on the way: 0.7-2 % of a clean
// 20 Mbit/s, 20 ms link's packets were sent twice.
func (s *sender) lossDelay() time.Duration {
	return max(max(s.srtt, s.latestRTT)*9/8, time.Millisecond)
}

// detectLoss declares lost: packets 3 or more below the largest
// acknowledged, packets older than 9/8 RTT below it, and any packet older
// than the PTO.
func (s *sender) detectLoss(now time.Time) {
	lossDelay := s.lossDelay()
	pto := s.pto()
	// At the end of a transfer nothing sent later will reveal a lost
	// packet: declare lost what is older than an RTT plus the ack delay
	// instead of waiting for a PTO of silence.
	tailDelay := pto
	if !s.hasSendable() && s.hasRTT {
		tailDelay = lossDelay + maxAckDelay + 10*time.Millisecond
	}
	lost := 0
	for i := range s.sent {
		p := &s.sent[i]
		if !p.inflight {
			continue
		}
		age := now.Sub(p.sent)
		below := s.hasAcked && p.pn < s.largestAcked
		tail := age > tailDelay && (tailDelay < pto || now.Sub(s.lastAckAt) > pto)
		if (below && (s.largestAcked-p.pn >= 3 || age > lossDelay)) || tail {
			p.inflight = false
			p.silent = !below
			s.inBytes -= p.size
			lost++
			s.stats.lost++
			if t := p.t; t != nil && !t.finished && !bitGet(t.acked, p.seg) && !bitGet(t.queued, p.seg) {
				bitSet(t.queued, p.seg)
				t.retx = append(t.retx, p.seg)
			}
			continue
		}
		if !below && !tail {
			break // later packets are younger and not below the largest acked
		}
	}
	if lost > 0 {
		s.m.onLost(lost)
	}
}

// trim drops settled records from the front.
func (s *sender) trim(now time.Time) {
	keep := max(lostKeep, 3*s.pto())
	i := 0
	for i < len(s.sent) && !s.sent[i].inflight {
		if p := &s.sent[i]; p.silent && p.size != 0 && now.Sub(p.sent) < keep {
			break // declared lost in silence, not acked: its ack may still come
		}
		i++
	}
	if i == 0 {
		return
	}
	n := copy(s.sent, s.sent[i:])
	for j := n; j < len(s.sent); j++ {
		s.sent[j] = sentPacket{}
	}
	s.sent = s.sent[:n]
}

// lossDeadline returns when detectLoss should run next (zero: nothing
// outstanding).
func (s *sender) lossDeadline() time.Time {
	for i := range s.sent {
		if s.sent[i].inflight {
			p := &s.sent[i]
			if !s.hasSendable() && s.hasRTT {
				return p.sent.Add(s.lossDelay() + maxAckDelay + 11*time.Millisecond)
			}
			at := p.sent
			if s.lastAckAt.After(at) {
				at = s.lastAckAt
			}
			return at.Add(s.pto() + time.Millisecond)
		}
	}
	return time.Time{}
}

// canSend reports whether congestion and flow control allow another
// data packet.
func (s *sender) canSend(size int) bool {
	if float64(s.inBytes+size) > s.m.cwnd() {
		return false
	}
	return int64(s.inBytes+size) <= s.peerWindow || s.inBytes == 0
}

// paced advances the pacing clock by one packet of size bytes.
func (s *sender) paced(size int, now time.Time) {
	// A late wake-up (timer slack, a busy CPU) may make up to 10 ms of
	// sending: the bottleneck queue absorbs that, a lost slot would not.
	const credit = 10 * time.Millisecond
	if s.nextSend.Before(now.Add(-credit)) {
		s.nextSend = now.Add(-credit)
	}
	s.nextSend = s.nextSend.Add(time.Duration(float64(size) / s.m.pacingRate() * float64(time.Second)))
}

// hasSendable reports whether any open transfer has a segment to send.
func (s *sender) hasSendable() bool {
	for _, t := range s.transfers {
		if t.sendable() {
			return true
		}
	}
	return false
}
