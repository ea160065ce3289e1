package linkmon

import (
	"math"
	"slices"
	"sync"
	"time"
)

// TrainEstimate computes a link's capacity from one packet train as seen by
// the receiver: C = (bytes after the first arrival) / (last − first
// arrival), which is (N−1)·S/Δ for N packets of S bytes. sizes and arrivals
// describe the train as sent, packet by packet; a zero arrival time marks a
// lost packet. Lost packets are left out of the bytes (a packet dropped at
// the bottleneck queue took no time there); arrivals may be reordered. The
// estimate is refused (ok false) when fewer than two packets or fewer than
// half of the train arrived, or the arrivals do not spread in time.
func TrainEstimate(sizes []int, arrivals []time.Time) (bps float64, ok bool) {
	if len(sizes) != len(arrivals) || len(sizes) < 2 {
		return 0, false
	}
	var first, last time.Time
	var total, firstSize, got int
	for i, at := range arrivals {
		if at.IsZero() || sizes[i] <= 0 {
			continue
		}
		got++
		total += sizes[i]
		if first.IsZero() || at.Before(first) {
			first, firstSize = at, sizes[i]
		}
		if at.After(last) {
			last = at
		}
	}
	if got < 2 || 2*got < len(sizes) {
		return 0, false
	}
	d := last.Sub(first)
	if d <= 0 {
		return 0, false
	}
	return float64(total-firstSize) * 8 / d.Seconds(), true
}

// MedianEstimate returns the median of the positive, finite estimates
// (several trains' TrainEstimate), and false if there are none.
func MedianEstimate(estimates []float64) (float64, bool) {
	var v []float64
	for _, e := range estimates {
		if e > 0 && !math.IsInf(e, 0) {
			v = append(v, e)
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	return median(v), true
}

// SummarizePings turns one round of pings into RTT, jitter and loss: rtts
// are the answered pings' round trips in send order, sent the number sent.
// RTT is their median, jitter the mean absolute difference of consecutive
// RTTs (RFC 3550's idea without its smoothing), loss the unanswered share.
// ok is false when nothing was sent or nothing answered (a stale sample).
func SummarizePings(rtts []time.Duration, sent int) (rtt, jitter time.Duration, loss float64, ok bool) {
	if sent <= 0 {
		return 0, 0, 0, false
	}
	n := min(len(rtts), sent)
	loss = 1 - float64(n)/float64(sent)
	if n == 0 {
		return 0, 0, loss, false
	}
	rtt = median(slices.Clone(rtts[:n]))
	if n > 1 {
		var sum time.Duration
		for i := 1; i < n; i++ {
			d := rtts[i] - rtts[i-1]
			sum += max(d, -d)
		}
		jitter = sum / time.Duration(n-1)
	}
	return rtt, jitter, loss, true
}

// QUICInitialRTT is what quic-go reports for every RTT before its first
// RTT sample (with a zero mean deviation); such readings are ignored.
const QUICInitialRTT = 100 * time.Millisecond

// ConnSample is a snapshot of one connection's counters: quic-go's
// ConnectionStats (SmoothedRTT, MeanDeviation, BytesSent, BytesLost) plus
// what the sender reports (BytesAcked, AppLimited, Delivery; see
// DeliveryMeter). linkmon defines it so its logic stays testable without a
// connection.
type ConnSample struct {
	At            time.Time
	SmoothedRTT   time.Duration
	MeanDeviation time.Duration
	BytesSent     uint64
	BytesLost     uint64
	BytesAcked    uint64
	// AppLimited is true if the sender ran out of data to send at any
	// time since the previous sample: the delivery rate is then only a
	// lower bound of the capacity.
	AppLimited bool
	// Delivery, when it has a rate, is the sender's delivery rate over its
	// recent acknowledgements (DeliveryMeter.Rate); it is used instead of
	// ΔBytesAcked/Δt, which spreads ack bursts over whole intervals.
	Delivery DeliveryRate
}

// hasRTT reports whether the RTT figures come from a real RTT sample.
func (s ConnSample) hasRTT() bool {
	return s.SmoothedRTT > 0 && !(s.SmoothedRTT == QUICInitialRTT && s.MeanDeviation == 0)
}

// MinLossBytes is how many bytes must be sent before a passive loss figure
// is computed; below it one lost packet would read as a huge loss.
const MinLossBytes = 32 << 10

// MaxLossSpan: a passive loss span that took longer than this to send
// MinLossBytes gives no loss figure: fewer packets than the pings of the
// same time (4 a second) count in it.
const MaxLossSpan = time.Second

// PassiveEstimator turns successive ConnSamples of one connection into
// passive measurements. Not safe for concurrent use.
type PassiveEstimator struct {
	prev     ConnSample
	have     bool
	lossBase ConnSample // start of the span the loss figure covers
	loss     float64
	// lossUntil: the loss figure stands until then, as long after its
	// span closed as the span took.
	lossUntil time.Time
	// lossFrom: no loss figure covers a span that began before it (see
	// AfterOutage).
	lossFrom time.Time
}

// AfterOutage returns an estimator for a connection whose link came back
// at: QUIC declares the packets sent into the outage lost only once
// acknowledgements flow again, in the first round trips after the return;
// counted, they read as the new link's loss (16.8 % for 15 s on a 0.1 %
// link). Loss spans begin after grace.
func AfterOutage(at time.Time, grace time.Duration) PassiveEstimator {
	return PassiveEstimator{lossFrom: at.Add(grace)}
}

// Observe takes the next snapshot and returns the measurement for the
// interval since the previous one: RTT and jitter from SmoothedRTT and
// MeanDeviation (none before quic-go's first RTT sample), loss as
// ΔBytesLost/ΔBytesSent over the latest span with at least MinLossBytes
// sent within MaxLossSpan (the figure is repeated for as long as its span
// took, then none until the next span closes), and bandwidth as the
// delivery rate: s.Delivery when it has one, else ΔBytesAcked/Δt, a lower
// bound when the sender was app-limited. ok is false when the sample
// carries nothing usable (the first one without an RTT, or counters that
// went backwards: a new connection, which restarts the estimator).
func (p *PassiveEstimator) Observe(s ConnSample) (m Measurement, ok bool) {
	m = Measurement{At: s.At, Method: MethodPassive}
	if s.hasRTT() {
		m.RTT, m.Jitter = s.SmoothedRTT, s.MeanDeviation
	}
	reset := p.have && (s.BytesSent < p.prev.BytesSent || s.BytesLost < p.prev.BytesLost ||
		s.BytesAcked < p.prev.BytesAcked || !s.At.After(p.prev.At))
	if !p.have || reset {
		p.prev, p.lossBase, p.have, p.loss = s, s, true, 0
		if s.Delivery.Bps > 0 {
			m.BandwidthBps, m.BandwidthLowerBound = s.Delivery.Bps, s.Delivery.AppLimited
		}
		return m, m.RTT > 0 || m.BandwidthBps > 0
	}
	if s.At.Before(p.lossFrom) {
		p.lossBase = s // what is declared lost now was sent into the outage
	}
	if sent := s.BytesSent - p.lossBase.BytesSent; sent >= MinLossBytes {
		lost, took := s.BytesLost-p.lossBase.BytesLost, s.At.Sub(p.lossBase.At)
		p.loss = min(1, float64(lost)/float64(sent))
		p.lossUntil = s.At.Add(took)
		p.lossBase = s
		if took > MaxLossSpan {
			// QUIC sent little (the data goes by the lane): the span's
			// few packets say less than the pings of the same time
			// (TestPassiveLossOfASparseSpanNotTaken).
			p.lossUntil = time.Time{}
		}
	}
	if s.At.After(p.lossUntil) {
		// QUIC sends too little now to close a span (pings, commits):
		// the last span's figure says nothing of the link's loss since,
		// the pings do. Repeated until the next span, the 15.7 % of the
		// lane's overshoot into lte stood for 10 s
		// (TestPassiveLossOfABurstFades).
		p.loss = 0
	}
	m.Loss = p.loss
	switch acked := s.BytesAcked - p.prev.BytesAcked; {
	case s.Delivery.Bps > 0:
		m.BandwidthBps, m.BandwidthLowerBound = s.Delivery.Bps, s.Delivery.AppLimited
	case acked > 0:
		m.BandwidthBps = float64(acked) * 8 / s.At.Sub(p.prev.At).Seconds()
		m.BandwidthLowerBound = s.AppLimited
	}
	p.prev = s
	return m, true
}

// DeliveryReporter is what the sender reports into: acknowledged bytes,
// and the moments it had nothing to send.
type DeliveryReporter interface {
	// OnAcked records n bytes acknowledged by the peer.
	OnAcked(n int)
	// OnAppLimited records that the sender ran out of data to send.
	OnAppLimited()
}

// Delivery-rate sampling.
const (
	// ackEvents is how many acknowledgements a DeliveryMeter keeps.
	ackEvents = 1024
	// minAckEvents: a rate needs this many acknowledgements; the window
	// reaches further back (up to maxDeliverySpan) to find them on a slow
	// link.
	minAckEvents = 4
	// maxDeliverySpan bounds how far back a rate looks.
	maxDeliverySpan = 2 * time.Second
	// appLimitedSlack widens the span an app-limited moment taints, for
	// acknowledgement delay and timer noise.
	appLimitedSlack = 20 * time.Millisecond
)

// DeliveryRate is a delivery-rate sample over a span of acknowledgements.
type DeliveryRate struct {
	// Bps is the rate: the bytes acknowledged after the span's first
	// acknowledgement, over the span; 0 when there is no sample.
	Bps float64
	// Span is the time from the first to the last acknowledgement.
	Span time.Duration
	// Acks is the number of acknowledgements in the span.
	Acks int
	// AppLimited is true when the rate is only a lower bound of the
	// capacity: the sender ran out of data while the acknowledged bytes
	// were being sent.
	AppLimited bool
}

type ackEvent struct {
	at  time.Time
	cum uint64 // bytes acknowledged up to and including this event
}

// DeliveryMeter is a DeliveryReporter that turns what the sender reports
// into a delivery rate (Rate) and counters for a PassiveEstimator's
// ConnSample (Snapshot). It keeps the times of the last acknowledgements,
// so a sender should report each acknowledgement as it arrives (per packet
// or per ACK frame), not one lump per transfer. Safe for concurrent use;
// OnAcked and OnAppLimited take a mutex for a few instructions.
type DeliveryMeter struct {
	mu         sync.Mutex
	acked      uint64
	appLimited bool      // since the previous Snapshot
	limitedAt  time.Time // the latest OnAppLimited
	events     [ackEvents]ackEvent
	n, next    int // events kept; next slot
	// runStart is the first acknowledgement after a silence of ackRunGap
	// or more: when the sender's current run of data began to arrive.
	runStart time.Time
}

// ackRunGap is the silence after which acknowledgements begin a new run
// (DeliveryMeter.run): as long as a delivery rate stands (filledFor).
const ackRunGap = filledFor

var _ DeliveryReporter = (*DeliveryMeter)(nil)

// OnAcked implements DeliveryReporter.
func (d *DeliveryMeter) OnAcked(n int) { d.ackedAt(n, time.Now()) }

func (d *DeliveryMeter) ackedAt(n int, at time.Time) {
	if n <= 0 {
		return
	}
	d.mu.Lock()
	if d.n == 0 || at.Sub(d.events[(d.next-1+ackEvents)%ackEvents].at) >= ackRunGap {
		d.runStart = at
	}
	d.acked += uint64(n)
	d.events[d.next] = ackEvent{at: at, cum: d.acked}
	d.next = (d.next + 1) % ackEvents
	d.n = min(d.n+1, ackEvents)
	d.mu.Unlock()
}

// OnAppLimited implements DeliveryReporter.
func (d *DeliveryMeter) OnAppLimited() { d.appLimitedAt(time.Now()) }

func (d *DeliveryMeter) appLimitedAt(at time.Time) {
	d.mu.Lock()
	d.appLimited = true
	if at.After(d.limitedAt) {
		d.limitedAt = at
	}
	d.mu.Unlock()
}

// reset forgets what was reported, for a new measurement run.
func (d *DeliveryMeter) reset() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.acked, d.appLimited, d.limitedAt = 0, false, time.Time{}
	d.events, d.n, d.next, d.runStart = [ackEvents]ackEvent{}, 0, 0, time.Time{}
}

// run returns when the current run of acknowledgements began (the first
// after a silence of ackRunGap) and the latest of them; zero times when
// none was reported.
func (d *DeliveryMeter) run() (start, last time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == 0 {
		return time.Time{}, time.Time{}
	}
	return d.runStart, d.events[(d.next-1+ackEvents)%ackEvents].at
}

// Snapshot returns the total bytes acknowledged and whether the sender was
// app-limited since the previous Snapshot, and clears that flag.
func (d *DeliveryMeter) Snapshot() (acked uint64, appLimited bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	acked, appLimited = d.acked, d.appLimited
	d.appLimited = false
	return acked, appLimited
}

// Rate returns the delivery rate at now over the acknowledgements of the
// last span W = max(window, rtt) (at most maxDeliverySpan, reaching back
// for at least minAckEvents of them), and no rate (Bps 0) if none arrived
// within window. The rate is measured between two acknowledgements, as a
// delivery rate is: from the newest one at or before now − W (ref) to the
// newest of all, the bytes acknowledged after ref over the time between
// them. Acknowledgements come in clumps (one ACK frame for several
// packets, a round of them per RTT on a long path): a span that began at
// the first acknowledgement of a clump would count the clump's rest in
// no time and read up to its burst rate (1.35-1.7x the link's in
// TestDeliveryRateOfClumpedAcksNotInflated). From ref, the last one before
// the span, whole clumps fall in it, and over at least an RTT the rate
// cannot much exceed what the bottleneck delivered. When the meter holds
// nothing that old (the sender began within W), ref is the oldest
// acknowledgement kept: a silence before it does not dilute the rate.
// rtt is the path's round trip: an app-limited moment up to one rtt
// before ref (when the span's bytes were sent) makes the rate a lower
// bound. A span shorter than a quarter of the window gives no rate: a
// burst that short says little about the link; nor does one shorter than
// rtt from a sender that began within W.
func (d *DeliveryMeter) Rate(now time.Time, window, rtt time.Duration) DeliveryRate {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n < 2 {
		return DeliveryRate{}
	}
	at := func(i int) ackEvent { return d.events[(d.next-1-i+2*ackEvents)%ackEvents] } // 0 = newest
	last := at(0)
	if now.Sub(last.at) > window {
		return DeliveryRate{}
	}
	span := min(maxDeliverySpan, max(window, rtt))
	k := 1 // index of ref
	for k+1 < d.n {
		if now.Sub(at(k).at) >= span && k+1 >= minAckEvents {
			break // at(k) is the newest at or before now − span
		}
		if now.Sub(at(k+1).at) > maxDeliverySpan {
			break
		}
		k++
	}
	first := at(k)
	dt := last.at.Sub(first.at)
	if dt <= 0 || 4*dt < window {
		return DeliveryRate{}
	}
	if now.Sub(first.at) < span && dt < min(rtt, maxDeliverySpan) {
		// The sender began within the span, less than a round trip ago:
		// its acknowledgements are one round's clump, which ACKs bunched
		// together read above the link (2.85 Mbit/s on a 2 Mbit/s, 600
		// ms uplink; TestDeliveryRateOfFirstRoundNotTaken).
		return DeliveryRate{}
	}
	r := DeliveryRate{Bps: float64(last.cum-first.cum) * 8 / dt.Seconds(), Span: dt, Acks: k + 1}
	r.AppLimited = !d.limitedAt.Before(first.at.Add(-rtt - appLimitedSlack))
	return r
}

// Combine merges an active and a passive measurement taken at about the
// same time. When real traffic filled the link (a passive bandwidth that is
// not a lower bound) it replaces the active capacity; a lower bound only
// raises it. RTT and jitter come from the active pings when there are
// some (they see the path now, smoothed RTT lags), loss from the passive
// figure when it has one (it counts far more packets). Either may be
// missing (zero At); the result is Stale only if every present one is.
func Combine(active, passive Measurement) Measurement {
	switch {
	case passive.At.IsZero():
		return active
	case active.At.IsZero() || active.Stale:
		if active.Stale && passive.Stale {
			return active
		}
		return passive
	case passive.Stale:
		return active
	}
	m := active
	m.Method = MethodBoth
	m.At = active.At
	if passive.At.After(m.At) {
		m.At = passive.At
	}
	if passive.BandwidthBps > 0 {
		switch {
		case !passive.BandwidthLowerBound:
			m.BandwidthBps, m.BandwidthLowerBound = passive.BandwidthBps, false
		case passive.BandwidthBps > m.BandwidthBps:
			m.BandwidthBps, m.BandwidthLowerBound = passive.BandwidthBps, active.BandwidthBps <= 0
		}
	}
	if m.RTT <= 0 {
		m.RTT, m.Jitter = passive.RTT, passive.Jitter
	}
	if passive.Loss > 0 || active.Loss == 0 {
		m.Loss = passive.Loss
	}
	return m
}
