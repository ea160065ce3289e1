package lane

import (
	"time"

	"github.com/edge-sync/edge-sync/wire"
)

// Receiver timing: feedback goes out after feedbackEvery data packets, at
// once when a gap appears or a transfer closes, and at the latest
// maxAckDelay after the first unacknowledged data packet.
const (
	feedbackEvery = 10
	maxAckDelay   = 20 * time.Millisecond
	maxPNRanges   = 256 // received packet-number ranges remembered
)

// chunk is in-order data waiting for Deliver.
type chunk struct {
	id     [16]byte
	offset int64
	data   []byte
	num    uint32
	last   bool
}

// recvTransfer is the receiver's state of one incoming transfer.
type recvTransfer struct {
	metaKnown bool
	id        [16]byte
	base      int64
	total     uint32
	next      uint32            // bytes handed to the delivery queue
	pending   map[uint32][]byte // out-of-order segments by offset
	pendBytes int
	// complete: every byte is queued for Deliver. The transfer stays open
	// until Deliver has returned for its last chunk (then it is closed),
	// so that a late copy of one of its packets is not taken for the
	// first packet of a new transfer of the same number.
	complete bool
}

// receiver holds everything about the incoming direction. Guarded by
// Session.mu.
type receiver struct {
	maxBuffered int64
	buffered    int64 // out-of-order bytes + bytes queued for Deliver
	// budget, if not nil, holds a reservation of buffered bytes, but for
	// unreserved: the next in-order bytes of a transfer with data held
	// behind them, taken past a full budget because they free that data.
	budget     wire.Budget
	unreserved int64
	ended      bool // the session closed: everything is dropped

	pns        rangeSet
	largestAt  time.Time
	unacked    int // eliciting packets since the last feedback
	firstUnack time.Time
	immediate  bool
	lastAdvert int64

	open   map[uint32]*recvTransfer
	closed rangeSet // transfer numbers closed (delivered or reset)

	queue []chunk

	stats receiverStats
}

type receiverStats struct {
	packets, duplicates, refused, delivered int64
	deliveredBytes                          int64
}

func newReceiver(maxBuffered int64, budget wire.Budget) *receiver {
	return &receiver{
		maxBuffered: maxBuffered,
		budget:      budget,
		pns:         rangeSet{max: maxPNRanges},
		open:        map[uint32]*recvTransfer{},
		closed:      rangeSet{max: maxClosedRanges},
		lastAdvert:  maxBuffered,
	}
}

// isClosed reports whether transfer n is closed.
func (r *receiver) isClosed(n uint32) bool { return r.closed.has(uint64(n)) }

// onData handles one data frame; it reports whether the packet may be
// acknowledged (false: refused for lack of memory or transfer slots, so
// the sender sends it again later).
func (r *receiver) onData(f *dataFrame) bool {
	if r.isClosed(f.transfer) {
		r.stats.duplicates++
		return true
	}
	t := r.open[f.transfer]
	if t != nil && t.complete {
		r.stats.duplicates++
		return true
	}
	if t == nil {
		if len(r.open) >= MaxOpenTransfers {
			r.stats.refused++
			return false
		}
		t = &recvTransfer{pending: map[uint32][]byte{}}
		r.open[f.transfer] = t
	}
	if f.hasMeta && !t.metaKnown {
		if f.offset != 0 {
			return false // meta only travels with offset 0; ignore a forged-looking mix
		}
		t.metaKnown, t.id, t.base, t.total = true, f.id, f.base, f.total
	}
	if t.metaKnown && uint64(f.offset)+uint64(len(f.data)) > uint64(t.total) {
		return true // beyond the announced end: drop, nothing to deliver
	}
	if f.offset < t.next || t.pending[f.offset] != nil {
		r.stats.duplicates++
		return true
	}
	if r.ended || r.buffered+int64(len(f.data)) > r.maxBuffered {
		r.stats.refused++
		return false
	}
	if !r.reserve(len(f.data)) {
		// Refusing the bytes that out-of-order data waits for would hold
		// that data, and the budget, for ever.
		if f.offset != t.next || t.pendBytes == 0 || !t.metaKnown {
			r.stats.refused++
			return false
		}
		r.unreserved += int64(len(f.data))
	}
	// Copy: the packet buffer is reused.
	data := append([]byte(nil), f.data...)
	r.buffered += int64(len(data))
	if f.offset != t.next || !t.metaKnown {
		t.pending[f.offset] = data
		t.pendBytes += len(data)
		return true
	}
	r.push(f.transfer, t, data)
	for {
		d, ok := t.pending[t.next]
		if !ok {
			break
		}
		delete(t.pending, t.next)
		t.pendBytes -= len(d)
		r.push(f.transfer, t, d)
	}
	return true
}

// push queues in-order data of transfer n for Deliver.
func (r *receiver) push(n uint32, t *recvTransfer, data []byte) {
	c := chunk{id: t.id, offset: t.base + int64(t.next), data: data, num: n}
	t.next += uint32(len(data))
	c.last = t.next >= t.total
	r.queue = append(r.queue, c)
	if c.last {
		r.drop(t.pendBytes) // leftovers beyond the end
		t.pending, t.pendBytes, t.complete = nil, 0, true
	}
}

// reserve asks the budget, if any, for n bytes.
func (r *receiver) reserve(n int) bool {
	return r.budget == nil || r.budget.Reserve(n) == nil
}

// drop forgets n buffered bytes and gives back to the budget what of
// them it reserved.
func (r *receiver) drop(n int) {
	r.buffered -= int64(n)
	free := min(int64(n), r.unreserved)
	r.unreserved -= free
	if r.budget != nil && int64(n) > free {
		r.budget.Release(n - int(free))
	}
}

// close drops everything buffered; later data is refused.
func (r *receiver) close() {
	if !r.ended {
		r.ended = true
		r.drop(int(r.buffered))
		r.open, r.queue = map[uint32]*recvTransfer{}, nil
	}
}

// onReset abandons transfer n. It returns the transfer's op id when some
// of its data arrived (and may be waiting for Deliver).
func (r *receiver) onReset(n uint32) (id [16]byte, known bool) {
	if t := r.open[n]; t != nil {
		r.drop(t.pendBytes)
		delete(r.open, n)
		id, known = t.id, t.metaKnown
	}
	r.closed.add(uint64(n))
	r.immediate = true
	return id, known
}

// delivered is called after Deliver returned for c.
func (r *receiver) delivered(c chunk) {
	if r.ended {
		return // close gave everything back
	}
	r.drop(len(c.data))
	r.stats.delivered++
	r.stats.deliveredBytes += int64(len(c.data))
	if c.last {
		delete(r.open, c.num)
		r.closed.add(uint64(c.num))
		r.immediate = true
	}
	if free := r.maxBuffered - r.buffered; r.lastAdvert < r.maxBuffered/4 && free >= r.maxBuffered/2 {
		r.immediate = true // window update after a slow consumer caught up
	}
}

// onPacket records an authenticated packet number; false means a replay.
func (r *receiver) onPacket(pn uint64, now time.Time) bool {
	top, ok := r.pns.largest()
	if !r.pns.add(pn) {
		return false
	}
	if !ok || pn > top {
		r.largestAt = now
		if ok && pn > top+1 {
			r.immediate = true // a gap: tell the sender soon
		}
	}
	return true
}

// unrecord forgets pn so that it is not acknowledged (the packet was
// refused); a replay of it is then processed like the original.
func (r *receiver) unrecord(pn uint64) {
	for i := range r.pns.r {
		x := &r.pns.r[i]
		if pn < x.lo || pn > x.hi {
			continue
		}
		switch {
		case x.lo == x.hi:
			r.pns.r = append(r.pns.r[:i], r.pns.r[i+1:]...)
		case pn == x.lo:
			x.lo++
		case pn == x.hi:
			x.hi--
		default:
			hi := x.hi
			x.hi = pn - 1
			r.pns.r = append(r.pns.r, numRange{})
			copy(r.pns.r[i+2:], r.pns.r[i+1:])
			r.pns.r[i+1] = numRange{pn + 1, hi}
		}
		return
	}
}

// elicited counts an ack-eliciting packet.
func (r *receiver) elicited(now time.Time) {
	if r.unacked == 0 {
		r.firstUnack = now
	}
	r.unacked++
}

// feedbackDue returns whether feedback should go now, else when.
func (r *receiver) feedbackDue(now time.Time) (bool, time.Time) {
	if r.unacked == 0 && !r.immediate {
		return false, time.Time{}
	}
	if r.immediate || r.unacked >= feedbackEvery {
		return true, time.Time{}
	}
	at := r.firstUnack.Add(maxAckDelay)
	return !now.Before(at), at
}

// feedback fills fb with the current state and resets the counters.
func (r *receiver) feedback(fb *feedback, now time.Time) {
	fb.acks = r.pns.top(fb.acks[:0], maxAckRanges)
	fb.ackDelayMicros = uint64(max(now.Sub(r.largestAt), 0) / time.Microsecond)
	free := max(r.maxBuffered-r.buffered, 0)
	fb.window = uint64(free)
	r.lastAdvert = free
	fb.closed = fb.closed[:0]
	fb.closedBelow = r.closed.floor
	rs := r.closed.r
	if len(rs) > 0 && rs[0].lo <= fb.closedBelow {
		fb.closedBelow = rs[0].hi + 1
		rs = rs[1:]
	}
	for _, x := range rs {
		if len(fb.closed) == maxClosedRanges {
			break
		}
		fb.closed = append(fb.closed, x)
	}
	r.unacked = 0
	r.immediate = false
}
