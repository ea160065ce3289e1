package lane

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/wire"
)

// exporterLabel is the TLS exporter label both peers derive lane keys from.
const exporterLabel = "edge-sync lane v1"

// DefaultMaxBufferedBytes is the default receive memory per session.
const DefaultMaxBufferedBytes = 16 << 20

// Config configures one side of a lane session.
type Config struct {
	// Client is true on the side that dialled the QUIC connection; it
	// picks the direction of the keys and tags.
	Client bool
	// Deliver receives incoming data in order per transfer: (op id,
	// absolute offset, bytes). It runs on one goroutine per session and
	// owns data. While it blocks, the receive buffer fills and the peer
	// slows down. Nil discards incoming data.
	Deliver func(id [16]byte, offset int64, data []byte)
	// Abandoned, when set, is told the op id of a transfer the peer
	// abandoned (its Send ended early) after some of its data arrived, so
	// that a Deliver waiting on that op can give up at once. It runs with
	// the session's lock held and must not block or call back into the
	// session.
	Abandoned func(id [16]byte)
	// MaxRate caps the sending rate in bit/s (UDP payload); 0 is no cap.
	MaxRate int64
	// InitialRate is a hint in bit/s, e.g. the link's last measured
	// capacity; startup begins at half of it. 0 starts from a 32-packet
	// window.
	InitialRate int64
	// MaxBufferedBytes bounds received data held per session (out of
	// order or waiting for Deliver); default DefaultMaxBufferedBytes.
	MaxBufferedBytes int64
	// Budget, when set, is asked for every received byte the session
	// holds, before it copies it, and given the bytes back once they are
	// delivered, dropped or the session closes: a bound shared with other
	// holders of memory (the core's frames in flight). A refusal is
	// handled as a full receive buffer: the packet is not acknowledged
	// and the peer sends it again later. Its methods run with the
	// session's lock held and must not block or call back into the
	// session.
	Budget wire.Budget
	// PacketSize is the UDP payload size of full packets, MinPacketSize
	// to MaxPacketSize; default DefaultPacketSize.
	PacketSize int
	// Delivery, when set, is told the payload bytes the peer acknowledges
	// as each acknowledgement arrives, and whenever something other than
	// the link holds the lane back (no data to send, startup, a MaxRate
	// cap, the receiver's buffer): a link monitor's passive delivery
	// rate. Its methods run with the session's lock held and must not
	// block or call back into the session.
	Delivery DeliveryReporter
}

// DeliveryReporter receives the lane's acknowledged payload bytes and its
// app-limited moments (linkmon.DeliveryMeter is one).
type DeliveryReporter interface {
	OnAcked(n int)
	OnAppLimited()
}

// Stats are a session's counters.
type Stats struct {
	PacketsSent, Retransmits, PacketsLost, SpuriousLosses, Pings int64
	// BytesAcked counts payload bytes the peer acknowledged (first time).
	BytesAcked int64
	// PacketsReceived counts authenticated packets; Forged failed
	// authentication; Replayed repeated a packet number; Malformed
	// authenticated but did not parse; Refused were dropped for lack of
	// buffer or transfer slots.
	PacketsReceived, Forged, Replayed, Malformed, Refused, Duplicates int64
	// BytesDelivered counts payload bytes handed to Deliver.
	BytesDelivered int64
	// Buffered is received data held now.
	Buffered int64
	// SmoothedRTT and MinRTT are the sender's RTT estimates.
	SmoothedRTT, MinRTT time.Duration
	// BottleneckBps and PacingBps are the rate model's estimates in bit/s.
	BottleneckBps, PacingBps float64
	// State is the rate model's state: startup, drain or probe_bw.
	State string
}

// Session is a rate-paced, loss-tolerant data lane beside one QUIC
// connection, sharing its UDP socket. Both peers may Send.
type Session struct {
	cfg    Config
	conn   *quic.Conn
	tr     *quic.Transport
	demux  *Demux
	remote net.Addr
	out    *sealer
	in     *sealer

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	wake        chan struct{}
	deliverWake chan struct{}
	slots       chan struct{}

	mu  sync.Mutex
	snd *sender
	rcv *receiver

	// Used only by the demux goroutine.
	openBuf []byte
	pp      parsedPacket

	forged, replayed, malformed atomic.Int64
}

// NewSession starts a lane on an established mutual-TLS QUIC connection
// whose packets flow through tr, registering with d for incoming packets.
func NewSession(conn *quic.Conn, tr *quic.Transport, d *Demux, cfg Config) (*Session, error) {
	if cfg.PacketSize == 0 {
		cfg.PacketSize = DefaultPacketSize
	}
	if cfg.PacketSize < MinPacketSize || cfg.PacketSize > MaxPacketSize {
		return nil, fmt.Errorf("new lane session: PacketSize %d not in %d..%d: %w", cfg.PacketSize, MinPacketSize, MaxPacketSize, ErrBadConfig)
	}
	if cfg.MaxBufferedBytes == 0 {
		cfg.MaxBufferedBytes = DefaultMaxBufferedBytes
	}
	if cfg.MaxBufferedBytes < int64(4*cfg.PacketSize) {
		return nil, fmt.Errorf("new lane session: MaxBufferedBytes %d below 4 packets: %w", cfg.MaxBufferedBytes, ErrBadConfig)
	}
	if cfg.MaxRate < 0 || cfg.InitialRate < 0 {
		return nil, fmt.Errorf("new lane session: negative MaxRate or InitialRate: %w", ErrBadConfig)
	}
	state := conn.ConnectionState().TLS
	key, err := state.ExportKeyingMaterial(exporterLabel, nil, 32)
	if err != nil {
		return nil, fmt.Errorf("new lane session: export key: %w", err)
	}
	tags, err := state.ExportKeyingMaterial(exporterLabel, []byte("session tags"), 2*tagLen)
	if err != nil {
		return nil, fmt.Errorf("new lane session: export tags: %w", err)
	}
	var up, down [tagLen]byte // client→server, server→client
	copy(up[:], tags)
	copy(down[:], tags[tagLen:])
	if up == down {
		return nil, fmt.Errorf("new lane session: %w", ErrTagInUse)
	}
	outDir, outTag, inDir, inTag := uint32(1), down, uint32(0), up
	if cfg.Client {
		outDir, outTag, inDir, inTag = 0, up, 1, down
	}
	s := &Session{
		cfg: cfg, conn: conn, tr: tr, demux: d, remote: conn.RemoteAddr(),
		wake:        make(chan struct{}, 1),
		deliverWake: make(chan struct{}, 1),
		slots:       make(chan struct{}, MaxOpenTransfers),
		openBuf:     make([]byte, 0, MaxPacketSize),
	}
	if s.out, err = newSealer(key, outDir, outTag); err != nil {
		return nil, err
	}
	if s.in, err = newSealer(key, inDir, inTag); err != nil {
		return nil, err
	}
	stats := conn.ConnectionStats()
	rtt := stats.MinRTT
	if rtt <= 0 {
		rtt = stats.SmoothedRTT
	}
	now := time.Now()
	s.snd = newSender(cfg.PacketSize, rtt, float64(cfg.InitialRate)/8, float64(cfg.MaxRate)/8, now)
	s.rcv = newReceiver(cfg.MaxBufferedBytes, cfg.Budget)
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	if err := d.register(inTag, s); err != nil {
		s.cancel(err)
		return nil, fmt.Errorf("new lane session: %w", err)
	}
	s.wg.Add(2)
	go s.run()
	go s.deliverLoop()
	return s, nil
}

// Send carries data, the bytes of op id starting at offset, to the peer's
// Deliver, ahead of every transfer with a larger urgency value. It returns
// nil once the peer's Deliver has returned for every byte, or the cause
// when ctx or the session ends first (the peer may then have some of the
// bytes). data must not change until Send returns.
func (s *Session) Send(ctx context.Context, id [16]byte, offset int64, data []byte, urgency int8) error {
	if uint64(len(data)) > MaxSendBytes {
		return fmt.Errorf("lane send %d bytes: %w", len(data), ErrTooLarge)
	}
	if offset < 0 {
		return fmt.Errorf("lane send: negative offset %d: %w", offset, ErrBadConfig)
	}
	if len(data) == 0 {
		return nil
	}
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("lane send: %w", context.Cause(ctx))
	case <-s.ctx.Done():
		return fmt.Errorf("lane send: %w", ErrClosed)
	}
	t := &transfer{id: id, base: offset, data: data, urgency: urgency, done: make(chan error, 1)}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		<-s.slots
		return fmt.Errorf("lane send: %w", ErrClosed)
	}
	s.snd.add(t)
	s.mu.Unlock()
	s.signal()
	select {
	case err := <-t.done:
		return err
	case <-s.ctx.Done():
		return fmt.Errorf("lane send: %w", ErrClosed)
	case <-ctx.Done():
	}
	s.mu.Lock()
	if t.finished { // completed while ctx ended: report the outcome
		s.mu.Unlock()
		return <-t.done
	}
	t.reset = true
	s.snd.resets[t.num] = t
	s.snd.lastReset = time.Time{}
	s.mu.Unlock()
	s.signal()
	return fmt.Errorf("lane send: %w", context.Cause(ctx))
}

// SetMaxRate caps the sending rate at bps bit/s; 0 removes the cap.
func (s *Session) SetMaxRate(bps int64) {
	s.mu.Lock()
	s.snd.m.maxRate = float64(max(bps, 0)) / 8
	s.mu.Unlock()
	s.signal()
}

// Hint gives the rate model a capacity in bit/s measured outside the lane,
// e.g. the link monitor's first probe after the connection came up (when
// Config.InitialRate had nothing to offer), on links with a minimum RTT of
// 200 ms or more. A lane that has not sent yet cruises at it, as at
// InitialRate; one still in startup whose own
// estimate is lower goes on from the hint, growing at most a quarter a
// round. Either spares the queue overflow of startup's last rounds on a
// long link. Hint reports whether the hint was taken. Later hints are
// ignored: by then the lane's own delivery rate is the better measure.
func (s *Session) Hint(bps int64) bool {
	s.mu.Lock()
	ok := s.snd.m.hint(float64(bps)/8, s.snd.delivered == 0 && s.snd.inBytes == 0, time.Now())
	s.mu.Unlock()
	if ok {
		s.signal()
	}
	return ok
}

// Stats returns a snapshot of the counters.
func (s *Session) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, rs := s.snd.stats, s.rcv.stats
	return Stats{
		PacketsSent: ss.packets, Retransmits: ss.retransmits, PacketsLost: ss.lost,
		SpuriousLosses: ss.spurious, Pings: ss.pings, BytesAcked: ss.bytesAcked,
		PacketsReceived: rs.packets, Forged: s.forged.Load(), Replayed: s.replayed.Load(),
		Malformed: s.malformed.Load(), Refused: rs.refused, Duplicates: rs.duplicates,
		BytesDelivered: rs.deliveredBytes, Buffered: s.rcv.buffered,
		SmoothedRTT: s.snd.srtt, MinRTT: s.snd.m.minRTT,
		BottleneckBps: s.snd.m.btlbw * 8, PacingBps: s.snd.m.pacingRate() * 8,
		State: s.snd.m.state.String(),
	}
}

// Close stops the session's goroutines; pending Sends return ErrClosed.
// It does not close the QUIC connection, the transport or the demux.
func (s *Session) Close() error {
	s.cancel(ErrClosed)
	s.wg.Wait()
	s.demux.unregister(s.in.tag, s)
	s.mu.Lock()
	s.rcv.close()
	s.mu.Unlock()
	return nil
}

func (s *Session) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// handlePacket runs on the demux goroutine for every packet with our tag.
func (s *Session) handlePacket(p []byte) {
	pn, plain, ok := s.in.open(s.openBuf[:0], p)
	if !ok {
		s.forged.Add(1)
		return
	}
	if err := parsePacket(plain, &s.pp); err != nil {
		s.malformed.Add(1)
		return
	}
	now := time.Now()
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	if !s.rcv.onPacket(pn, now) {
		s.mu.Unlock()
		s.replayed.Add(1)
		return
	}
	s.rcv.stats.packets++
	pp := &s.pp
	for _, n := range pp.resets {
		if id, ok := s.rcv.onReset(n); ok && s.cfg.Abandoned != nil {
			s.cfg.Abandoned(id)
		}
	}
	queued := len(s.rcv.queue)
	if pp.hasData && !s.rcv.onData(&pp.data) {
		s.rcv.unrecord(pn)
	} else if pp.elicits() {
		s.rcv.elicited(now)
	}
	grew := len(s.rcv.queue) > queued
	if pp.hasFeedback {
		acked := s.snd.stats.bytesAcked
		s.snd.onFeedback(&pp.fb, now)
		if d := s.cfg.Delivery; d != nil && s.snd.stats.bytesAcked > acked {
			d.OnAcked(int(s.snd.stats.bytesAcked - acked))
		}
		s.closeReported(&pp.fb)
	}
	s.mu.Unlock()
	if grew {
		select {
		case s.deliverWake <- struct{}{}:
		default:
		}
	}
	s.signal()
}

// closeReported finishes the transfers the peer reports closed.
func (s *Session) closeReported(fb *feedback) {
	for i := 0; i < len(s.snd.transfers); i++ {
		t := s.snd.transfers[i]
		n := uint64(t.num)
		closed := n < fb.closedBelow
		for _, r := range fb.closed {
			if n >= r.lo && n <= r.hi {
				closed = true
				break
			}
		}
		if !closed {
			continue
		}
		if !t.reset && t.nAcked != t.segs {
			continue // not from us: a stale report cannot close unsent data
		}
		s.finish(t, nil)
		i--
	}
}

// finish ends a transfer; called with s.mu held.
func (s *Session) finish(t *transfer, err error) {
	if t.finished {
		return
	}
	t.finished = true
	s.snd.remove(t)
	delete(s.snd.resets, t.num)
	t.done <- err
	<-s.slots
}

func (s *Session) deliverLoop() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		for len(s.rcv.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.ctx.Done():
				return
			case <-s.deliverWake:
			}
			s.mu.Lock()
		}
		c := s.rcv.queue[0]
		s.rcv.queue[0] = chunk{}
		s.rcv.queue = s.rcv.queue[1:]
		s.mu.Unlock()
		if s.cfg.Deliver != nil {
			s.cfg.Deliver(c.id, c.offset, c.data)
		}
		s.mu.Lock()
		s.rcv.delivered(c)
		imm := s.rcv.immediate
		s.mu.Unlock()
		if imm {
			s.signal()
		}
	}
}

// run is the session's clock: it sends feedback, resets, pings and paced
// data, and runs loss detection.
func (s *Session) run() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch [][]byte
	for {
		var at time.Time
		batch, at = s.step(time.Now(), batch[:0])
		for _, b := range batch {
			_, _ = s.tr.WriteTo(b, s.remote) // a failed write is a lost packet
		}
		if len(batch) == maxBatch && s.ctx.Err() == nil {
			continue // more may be ready
		}
		wait := time.Hour
		if !at.IsZero() {
			wait = max(time.Until(at), 0)
		}
		timer.Reset(wait)
		select {
		case <-s.ctx.Done():
			s.failAll()
			return
		case <-s.conn.Context().Done():
			s.cancel(fmt.Errorf("%w: quic connection: %w", ErrClosed, context.Cause(s.conn.Context())))
			s.failAll()
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

func (s *Session) failAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.snd.transfers) > 0 {
		s.finish(s.snd.transfers[0], ErrClosed)
	}
}

const maxBatch = 16

// step builds up to maxBatch sealed packets and returns them with the time
// it wants to run again (zero: only on a wake-up): feedback for the peer's
// data, resets of abandoned transfers, paced data, and a ping when only
// the peer's feedback can move things on.
func (s *Session) step(now time.Time, batch [][]byte) ([][]byte, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next wakeAt
	if d := s.snd.lossDeadline(); !d.IsZero() && !now.Before(d) {
		s.snd.detectLoss(now)
		s.snd.trim(now)
	}
	var frames [MaxPacketSize]byte
	batch = s.stepFeedback(batch, frames[:0], now, &next)
	batch = s.stepResets(batch, frames[:0], now, &next)
	batch = s.stepData(batch, frames[:0], now, &next)
	batch = s.stepElicit(batch, frames[:0], now, &next)
	next.add(s.snd.lossDeadline())
	return batch, next.t
}

// wakeAt is the earliest of the times step must run again; zero is none.
type wakeAt struct{ t time.Time }

// add makes t a candidate; the zero time is none.
func (w *wakeAt) add(t time.Time) {
	if !t.IsZero() && (w.t.IsZero() || t.Before(w.t)) {
		w.t = t
	}
}

// stepFeedback sends feedback for the peer's data when it is due.
func (s *Session) stepFeedback(batch [][]byte, frames []byte, now time.Time, next *wakeAt) [][]byte {
	due, at := s.rcv.feedbackDue(now)
	if !due {
		next.add(at)
		return batch
	}
	var fb feedback
	s.rcv.feedback(&fb, now)
	return s.seal(batch, appendFeedback(frames, &fb), false, nil, 0, now)
}

// stepResets resends the resets of abandoned transfers, once every RTT
// until the peer reports them closed.
func (s *Session) stepResets(batch [][]byte, frames []byte, now time.Time, next *wakeAt) [][]byte {
	snd := s.snd
	if len(snd.resets) == 0 {
		return batch
	}
	if now.Sub(snd.lastReset) >= snd.srtt {
		n := 0
		for num := range snd.resets {
			if n == maxResets {
				break
			}
			frames = append(frames, frameReset)
			frames = binary.AppendUvarint(frames, uint64(num))
			n++
		}
		batch = s.seal(batch, frames, true, nil, 0, now)
		snd.lastReset = now
	}
	next.add(snd.lastReset.Add(snd.srtt))
	return batch
}

// stepData sends data, paced, while the window and the batch allow, and
// tells Config.Delivery when something other than the link holds the
// lane back.
func (s *Session) stepData(batch [][]byte, frames []byte, now time.Time, next *wakeAt) [][]byte {
	snd := s.snd
	size := s.cfg.PacketSize
	if d := s.cfg.Delivery; d != nil && (snd.m.state == stateStartup || snd.m.maxRate > 0) {
		// The rate is the model's (still growing) or the cap's, not the
		// link's: what is delivered now is a lower bound of capacity.
		d.OnAppLimited()
	}
	for len(batch) < maxBatch {
		if !snd.canSend(size) {
			if d := s.cfg.Delivery; d != nil && int64(snd.inBytes+size) > snd.peerWindow && snd.inBytes > 0 {
				d.OnAppLimited() // held back by the receiver, not the link
			}
			break
		}
		if snd.nextSend.After(now.Add(500 * time.Microsecond)) {
			if snd.hasSendable() {
				next.add(snd.nextSend)
			}
			break
		}
		t := snd.pick()
		if t == nil {
			if s.cfg.Delivery != nil {
				s.cfg.Delivery.OnAppLimited()
			}
			snd.appLimited = true
			break
		}
		snd.appLimited = false
		seg, retx := snd.nextSegment(t)
		if seg < 0 {
			continue // its retransmissions were acknowledged late: nothing to send
		}
		if retx {
			snd.stats.retransmits++
		}
		lo, hi := snd.segRange(seg, len(t.data))
		f := dataFrame{transfer: t.num, offset: uint32(lo), data: t.data[lo:hi]}
		if seg == 0 {
			f.hasMeta, f.id, f.base, f.total, f.urgency = true, t.id, t.base, uint32(len(t.data)), t.urgency
		}
		n := len(batch)
		batch = s.seal(batch, appendData(frames, &f), true, t, seg, now)
		snd.paced(len(batch[n]), now)
	}
	return batch
}

// stepElicit pings for feedback when transfers wait on the peer and
// nothing is in flight to elicit it (lost feedback, a closed report, a
// window update), at most once a PTO.
func (s *Session) stepElicit(batch [][]byte, frames []byte, now time.Time, next *wakeAt) [][]byte {
	snd := s.snd
	if snd.inBytes != 0 || len(snd.transfers) == 0 || len(batch) != 0 ||
		(snd.hasSendable() && snd.canSend(s.cfg.PacketSize)) {
		return batch
	}
	at := snd.lastElicit.Add(snd.pto())
	if !now.Before(at) {
		snd.stats.pings++
		batch = s.seal(batch, append(frames, framePing), true, nil, 0, now)
		at = now.Add(snd.pto())
	}
	next.add(at)
	return batch
}

// seal appends one sealed packet to batch and records it.
func (s *Session) seal(batch [][]byte, frames []byte, eliciting bool, t *transfer, seg int, now time.Time) [][]byte {
	var buf []byte
	if len(batch) < cap(batch) {
		buf = batch[:len(batch)+1][len(batch)][:0]
	}
	if buf == nil || cap(buf) < MaxPacketSize {
		buf = make([]byte, 0, MaxPacketSize)
	}
	pn := s.snd.nextPN
	s.snd.nextPN++
	buf = s.out.seal(buf, pn, frames)
	s.snd.record(sentPacket{pn: pn, sent: now, size: len(buf), t: t, seg: seg, eliciting: eliciting}, now)
	return append(batch, buf)
}
