package lane

import (
	"testing"
	"time"
)

// TestLateAckCounts: the path's RTT grows from 20 ms to 600 ms (broadband
// to satellite) with every segment of a transfer in flight. The sender,
// still at 20 ms, declares them lost long before their acknowledgements
// can come; when those come, 600 ms after sending, they must count: the
// segments are acknowledged and the RTT estimate learns the new path.
// Before, the records of lost packets were dropped at once and their
// acknowledgements ignored, so a retransmission was declared lost again
// before its ack came, for ever (the demo's op stalled at 0 % on the
// satellite step).
func TestLateAckCounts(t *testing.T) {
	start := time.Now()
	s := newSender(MaxPacketSize, 20*time.Millisecond, 0, 0, start)
	s.hasRTT = true
	tr := &transfer{data: make([]byte, 4*s.payload), done: make(chan error, 1)}
	s.add(tr)
	var pns []uint64
	for seg := range tr.segs {
		pn := s.nextPN
		s.nextPN++
		s.record(sentPacket{pn: pn, sent: start, size: MaxPacketSize, t: tr, seg: seg, eliciting: true}, start)
		pns = append(pns, pn)
	}
	// 100 ms later feedback acknowledges nothing: all are declared lost.
	s.onFeedback(&feedback{window: 1 << 20}, start.Add(100*time.Millisecond))
	if s.inBytes != 0 {
		t.Fatalf("%d bytes still in flight after 5 RTTs of silence", s.inBytes)
	}
	// Their acknowledgement comes 600 ms after they were sent.
	now := start.Add(600 * time.Millisecond)
	fb := &feedback{acks: []numRange{{lo: pns[0], hi: pns[len(pns)-1]}}, window: 1 << 20}
	s.onFeedback(fb, now)
	if got := s.stats.bytesAcked; got != int64(len(tr.data)) {
		t.Errorf("%d of %d bytes acknowledged by a late ack", got, len(tr.data))
	}
	if s.srtt < 80*time.Millisecond { // 7/8 of 20 ms and 1/8 of 600 ms
		t.Errorf("smoothed RTT %v: the 600 ms sample was not taken", s.srtt)
	}
}

// TestLateAckOfAQueuedSegment: a segment declared lost is queued to be
// sent again, and then its late ack comes. Nothing is left to send, and
// the sender must not take a segment past the transfer's end (it did:
// stepData panicked slicing the data, seen under -race in CI once late
// acks counted).
func TestLateAckOfAQueuedSegment(t *testing.T) {
	start := time.Now()
	s := newSender(MaxPacketSize, 20*time.Millisecond, 0, 0, start)
	s.hasRTT = true
	tr := &transfer{data: make([]byte, 100), done: make(chan error, 1)}
	s.add(tr)
	seg, _ := s.nextSegment(tr)
	pn := s.nextPN
	s.nextPN++
	s.record(sentPacket{pn: pn, sent: start, size: MaxPacketSize, t: tr, seg: seg, eliciting: true}, start)
	s.onFeedback(&feedback{window: 1 << 20}, start.Add(100*time.Millisecond)) // declared lost, queued again
	if len(tr.retx) != 1 {
		t.Fatalf("retransmission queue %v after the loss, want the one segment", tr.retx)
	}
	s.onFeedback(&feedback{acks: []numRange{{lo: pn, hi: pn}}, window: 1 << 20}, start.Add(600*time.Millisecond))
	if !tr.sendable() {
		return
	}
	if seg, _ := s.nextSegment(tr); seg >= 0 {
		t.Fatalf("segment %d of %d taken after the late ack; nothing is left to send", seg, tr.segs)
	}
}

// TestTailLossFollowsRisingRTT: with nothing left to send, a packet is
// declared lost for time after 9/8 RTT plus the ack delay. When the RTT
// rises (the lane's own queue at the bottleneck), that must follow the
// latest sample, not only the smoothed RTT that lags it: on a clean
// 20 Mbit/s, 20 ms link 0.7-2 % of the lane's packets were declared lost
// with their acks on the way, and sent again.
func TestTailLossFollowsRisingRTT(t *testing.T) {
	start := time.Now()
	s := newSender(MaxPacketSize, 20*time.Millisecond, 0, 0, start)
	s.updateRTT(20 * time.Millisecond)
	tr := &transfer{data: make([]byte, 2*s.payload), done: make(chan error, 1)}
	s.add(tr)
	var pns []uint64
	for i := range tr.segs {
		seg, _ := s.nextSegment(tr)
		pn := s.nextPN
		s.nextPN++
		at := start.Add(time.Duration(i) * time.Millisecond)
		s.record(sentPacket{pn: pn, sent: at, size: MaxPacketSize, t: tr, seg: seg, eliciting: true}, at)
		pns = append(pns, pn)
	}
	// The first packet's ack comes after 60 ms: the queue grew.
	s.onFeedback(&feedback{acks: []numRange{{lo: pns[0], hi: pns[0]}}, window: 1 << 20}, start.Add(60*time.Millisecond))
	// The second is as late, and its ack not yet back 75 ms after sending.
	s.onFeedback(&feedback{acks: []numRange{{lo: pns[0], hi: pns[0]}}, window: 1 << 20}, start.Add(76*time.Millisecond))
	if s.stats.lost != 0 {
		t.Fatalf("the tail packet was declared lost %v after it was sent, with the latest RTT at 60 ms (smoothed %v)",
			75*time.Millisecond, s.srtt)
	}
}
