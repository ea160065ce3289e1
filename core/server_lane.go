package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"

	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/wire"
	"github.com/edge-sync/edge-sync/wire/lane"
)

// Ops whose data travels on the data lane (wire/lane, OpHeader.Lane): the
// header, Commit and the answers stay on the op's stream; each lane
// transfer carries the DATA frames of consecutive chunks and is named by
// (OpHeader.LaneTransfer, first chunk index) in its 16-byte ID. The lane
// delivers each transfer in order but interleaves transfers, so the core
// keeps them apart, holds what arrived ahead of its turn, and decodes and
// stores frames in chunk order with the same code as stream DATA
// (opHandler.data). Storing happens inside the lane's Deliver, so when
// the agent's Send returns its chunks are durable (or the transfer has
// failed) and its Commit finds every byte in place. What arrives ahead of
// its turn is held up to twice lane.OpWindow per op.

// laneConn is a connection's data lane: nil fields when not granted.
type laneConn struct {
	session *lane.Session
	router  *laneRouter
}

// close stops the lane session, if any; pending lane data is dropped.
func (c *laneConn) close() {
	if c != nil && c.session != nil {
		c.router.close()      // a Deliver waiting for its op gives up
		_ = c.session.Close() // lane.Session.Close has no failure to report
	}
}

// laneRegisterWait bounds how long lane data waits for its op to be
// registered: an eager agent sends lane data right behind the op's header,
// and the lane can overtake the stream.
const laneRegisterWait = 10 * time.Second

// maxEndedTransfers bounds the transfers a router remembers as ended.
const maxEndedTransfers = 4096

// laneRouter hands a connection's lane data to the op waiting for it.
type laneRouter struct {
	mu  sync.Mutex
	ops map[uint64]*laneRecv
	// ended are transfers whose attempt is over (or never started): their
	// data is dropped at once. endedOrder prunes the oldest.
	ended      map[uint64]struct{}
	endedOrder []uint64
	// changed is closed and replaced whenever ops or ended change.
	changed chan struct{}
	closed  chan struct{}
	once    sync.Once
	// dropped counts lane bytes for no waiting op (an attempt that ended).
	dropped *atomic.Int64
}

func newLaneRouter(dropped *atomic.Int64) *laneRouter {
	return &laneRouter{ops: map[uint64]*laneRecv{}, ended: map[uint64]struct{}{},
		changed: make(chan struct{}), closed: make(chan struct{}), dropped: dropped}
}

func (r *laneRouter) close() { r.once.Do(func() { close(r.closed) }) }

// deliver is the lane session's Config.Deliver. Data of a transfer whose
// op is not registered yet waits for it (the lane session slows down
// meanwhile), at most laneRegisterWait; data of an ended transfer is
// dropped.
func (r *laneRouter) deliver(id [16]byte, offset int64, data []byte) {
	transfer := binary.BigEndian.Uint64(id[:8])
	first := binary.BigEndian.Uint64(id[8:])
	var timeout <-chan time.Time
	for {
		r.mu.Lock()
		op := r.ops[transfer]
		_, ended := r.ended[transfer]
		changed := r.changed
		r.mu.Unlock()
		if op != nil {
			op.add(first, offset, data)
			return
		}
		if ended {
			r.dropped.Add(int64(len(data)))
			return
		}
		if timeout == nil {
			t := time.NewTimer(laneRegisterWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-changed:
		case <-timeout:
			r.dropped.Add(int64(len(data)))
			return
		case <-r.closed:
			r.dropped.Add(int64(len(data)))
			return
		}
	}
}

// notifyLocked wakes Deliver calls waiting for a change.
func (r *laneRouter) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// register makes the op of transfer the one its lane data goes to.
func (r *laneRouter) register(transfer uint64, op *laneRecv) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.ops[transfer]; ok {
		return fmt.Errorf("%w: lane transfer %d is in use on this connection", wire.ErrBadRequest, transfer)
	}
	if _, ok := r.ended[transfer]; ok {
		return fmt.Errorf("%w: lane transfer %d has ended on this connection", wire.ErrBadRequest, transfer)
	}
	r.ops[transfer] = op
	r.notifyLocked()
	return nil
}

// end unregisters transfer, if op holds it, and drops its data from now
// on. An op handler ends its transfer however the attempt ends, also
// before it registered.
func (r *laneRouter) end(transfer uint64, op *laneRecv) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur, ok := r.ops[transfer]; ok {
		if cur != op {
			return // another attempt's (refused as in use)
		}
		delete(r.ops, transfer)
	}
	if _, ok := r.ended[transfer]; !ok {
		r.ended[transfer] = struct{}{}
		r.endedOrder = append(r.endedOrder, transfer)
		if len(r.endedOrder) > maxEndedTransfers {
			delete(r.ended, r.endedOrder[0])
			r.endedOrder = r.endedOrder[1:]
		}
	}
	r.notifyLocked()
}

// abandoned is the lane session's Config.Abandoned: the agent gave up a
// lane transfer. Lane data may come ahead of its op's header (the agent
// sends a large op's first chunks while its outbox writes the op,
// docs/wire.md); if no op holds the transfer, it ends here, so
// that a Deliver waiting for the header drops the data at once rather
// than after laneRegisterWait. An op that holds it ends it itself.
func (r *laneRouter) abandoned(id [16]byte) {
	r.end(binary.BigEndian.Uint64(id[:8]), nil)
}

// laneRecv reassembles and stores the lane data of one op attempt. Each
// lane transfer carries the DATA frames of consecutive chunks, starting at
// the chunk its ID names; transfers arrive interleaved, so they are kept
// apart by their first chunk and consumed in chunk order.
type laneRecv struct {
	h      *opHandler
	ch     *codec.Header
	base   *codec.Base
	id     [16]byte
	limit  int64
	chunks uint64
	// progress is signalled (without blocking) whenever a chunk is stored
	// or the transfer fails, so the handler can extend its deadline.
	progress chan struct{}

	mu       sync.Mutex
	next     uint64               // next chunk index to store
	cur      uint64               // first chunk of the transfer being consumed
	held     int64                // plain bytes the store holds
	parts    map[uint64]*lanePart // by first chunk
	buffered int64
	err      error
	closed   bool
}

// lanePart is what arrived of one lane transfer and is not stored yet.
type lanePart struct {
	buf []byte // unconsumed bytes, starting at a frame boundary
	got int64  // bytes received in all
}

func newLaneRecv(h *opHandler, ch *codec.Header, base *codec.Base, hdr *wire.OpHeader, held int64) *laneRecv {
	next := uint64(held / int64(ch.ChunkSize))
	if hdr.Eager {
		// The agent sends from its Offset without having heard what the
		// core holds; the chunks below held are decoded and skipped.
		next = hdr.Offset / uint64(ch.ChunkSize)
	}
	return &laneRecv{
		h: h, ch: ch, base: base, id: hdr.ID, limit: 2 * lane.OpWindow(ch.ChunkSize),
		chunks:   uint64(ch.Chunks()),
		progress: make(chan struct{}, 1),
		next:     next,
		cur:      next,
		held:     held,
		parts:    map[uint64]*lanePart{},
	}
}

func (l *laneRecv) signal() {
	select {
	case l.progress <- struct{}{}:
	default:
	}
}

// add takes bytes at offset of the lane transfer that starts at chunk
// first, and stores every complete frame whose turn has come.
func (l *laneRecv) add(first uint64, offset int64, data []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.err != nil {
		return
	}
	if err := l.addLocked(first, offset, data); err != nil {
		l.err = err
		l.dropParts()
		l.signal()
	}
}

// dropParts forgets what is held ahead of its turn and gives its memory
// back.
func (l *laneRecv) dropParts() {
	l.h.mem.Release(int(l.buffered))
	l.parts, l.buffered = nil, 0
}

func (l *laneRecv) addLocked(first uint64, offset int64, data []byte) error {
	p := l.parts[first]
	if p == nil {
		if first < l.next {
			return nil // a transfer whose chunks are all stored
		}
		if first >= l.chunks {
			return fmt.Errorf("%w: lane data for chunk %d of an op of %d chunks", wire.ErrBadRequest, first, l.chunks)
		}
		p = &lanePart{}
		l.parts[first] = p
	}
	if offset != p.got {
		return fmt.Errorf("%w: lane data of the transfer at chunk %d at %d, want %d", wire.ErrBadRequest, first, offset, p.got)
	}
	if l.buffered+int64(len(data)) > l.limit {
		return fmt.Errorf("%w: lane data beyond the %d bytes the core holds per op", wire.ErrTooLarge, l.limit)
	}
	if err := l.h.mem.Reserve(len(data)); err != nil {
		return fmt.Errorf("lane data held ahead of its turn: %w", err)
	}
	p.buf = append(p.buf, data...)
	p.got += int64(len(data))
	l.buffered += int64(len(data))
	if _, err := frameEnd(p.buf); err != nil {
		return err
	}
	for {
		p := l.parts[l.cur]
		if p == nil {
			return nil
		}
		end, err := frameEnd(p.buf)
		if err != nil {
			return err
		}
		if end < 0 || len(p.buf) < end {
			if len(p.buf) == 0 && l.cur != l.next && l.parts[l.next] != nil {
				// The next chunk comes in a transfer of its own.
				delete(l.parts, l.cur)
				l.cur = l.next
				continue
			}
			return nil // still arriving
		}
		if err := l.store(p.buf[:end]); err != nil {
			return err
		}
		l.buffered -= int64(end)
		l.h.mem.Release(end)
		p.buf = p.buf[end:]
		if len(p.buf) == 0 {
			p.buf = nil
		}
		l.next++
		l.signal()
	}
}

// store parses one complete DATA frame and stores its chunk.
func (l *laneRecv) store(b []byte) error {
	f, _, err := wire.Parse(b)
	if err != nil {
		return fmt.Errorf("lane chunk %d: %w", l.next, err)
	}
	d, ok := f.(*wire.Data)
	if !ok {
		return fmt.Errorf("%w: lane carries %s, want DATA", wire.ErrBadRequest, f.Type())
	}
	if d.ID != l.id {
		return fmt.Errorf("%w: lane DATA for op %s on the transfer of %s", wire.ErrBadRequest, d.ID, l.id)
	}
	if want := l.next * uint64(l.ch.ChunkSize); d.Offset != want {
		return fmt.Errorf("%w: lane chunk %d at offset %d, want %d", wire.ErrBadRequest, l.next, d.Offset, want)
	}
	held, err := l.h.data(l.ch, l.base, d, l.held)
	if err != nil {
		return err
	}
	l.held = held
	return nil
}

// frameEnd returns the length of the DATA frame b starts with, or -1 when
// its header is not complete yet.
func frameEnd(b []byte) (int, error) {
	t, n1, err := quicvarint.Parse(b)
	if err != nil {
		return -1, nil
	}
	if wire.FrameType(t) != wire.FrameData {
		return 0, fmt.Errorf("%w: lane carries frame type %d, want DATA", wire.ErrBadRequest, t)
	}
	ln, n2, err := quicvarint.Parse(b[n1:])
	if err != nil {
		return -1, nil
	}
	if ln > uint64(wire.FrameData.MaxBody()) {
		return 0, fmt.Errorf("%w: lane DATA declares %d bytes", wire.ErrFrameTooLarge, ln)
	}
	return n1 + n2 + int(ln), nil
}

// finish ends the attempt: no lane data is stored after it returns. It
// reports the failure, if any, and whether every chunk is stored.
func (l *laneRecv) finish() (complete bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		l.dropParts()
	}
	return l.next == l.chunks, l.err
}

// state reports whether every chunk is stored, and the failure, if any.
func (l *laneRecv) state() (complete bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.next == l.chunks, l.err
}

// laneOp runs the rest of an op whose data comes on the lane: it waits
// for the agent's COMMIT on the stream while the lane stores chunks, then
// for the last chunks (the agent commits as soon as it has handed its last
// chunk to the lane, a round trip before the lane confirms it), then
// commits as for stream data. The deadline moves with the lane's
// progress, so a long transfer on a slow link does not time out.
func (h *opHandler) laneOp(hdr *wire.OpHeader, ch *codec.Header, base *codec.Base, held int64, stored *bool) error {
	if hdr.Eager && (hdr.Offset%uint64(ch.ChunkSize) != 0 || hdr.Offset > uint64(held)) {
		return h.nack(hdr, fmt.Errorf("%w: eager lane data from offset %d, the core holds %d bytes in chunks of %d",
			wire.ErrBadRequest, hdr.Offset, held, ch.ChunkSize))
	}
	l := newLaneRecv(h, ch, base, hdr, held)
	if err := h.lane.register(hdr.LaneTransfer, l); err != nil {
		return h.nack(hdr, err)
	}
	defer h.lane.end(hdr.LaneTransfer, l)
	defer l.finish()

	type read struct {
		f   wire.Frame
		err error
	}
	frames := make(chan read, 1)
	// The deadline is set here and extended below as lane data comes,
	// while the goroutine waits for the COMMIT.
	h.in.deadline.setNow()
	go func() {
		f, err := h.fr.ReadFrameOf(wire.FrameCommit)
		frames <- read{f, err}
	}()
	// Before COMMIT the stream's read deadline bounds the wait; after it,
	// nothing more is read and a timer does, with the connection.
	var committed bool
	var connGone <-chan struct{}
	var timeout <-chan time.Time
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if committed {
			complete, err := l.state()
			switch {
			case err != nil:
				return h.nack(hdr, err)
			case complete:
				if _, err := l.finish(); err != nil {
					return h.nack(hdr, err)
				}
				h.stats.laneOps.Add(1)
				return h.commit(hdr, stored)
			}
		}
		select {
		case <-l.progress:
			if err := l.failed(); err != nil && !committed {
				h.str.CancelRead(quic.StreamErrorCode(wire.CodeOf(toWire(err))))
				<-frames
				return h.nack(hdr, err)
			}
			if committed {
				timer.Reset(h.frameTimeout)
			} else {
				setReadTimeout(h.str, h.frameTimeout)
			}
		case r := <-frames:
			if errors.Is(r.err, wire.ErrUnexpectedFrame) || errors.Is(r.err, wire.ErrBusy) {
				return h.nack(hdr, r.err)
			}
			if r.err != nil {
				return fmt.Errorf("%w: stream ended before the op was committed: %w", wire.ErrBadRequest, r.err)
			}
			c := r.f.(*wire.Commit)
			if c.ID != hdr.ID {
				return h.nack(hdr, fmt.Errorf("%w: COMMIT of op %s on the stream of %s", wire.ErrBadRequest, c.ID, hdr.ID))
			}
			if c.Chunks != l.chunks {
				return h.nack(hdr, fmt.Errorf("%w: COMMIT of %d chunks, the op has %d", wire.ErrBadRequest, c.Chunks, l.chunks))
			}
			committed, connGone = true, h.str.Context().Done()
			timer = time.NewTimer(h.frameTimeout)
			timeout = timer.C
		case <-timeout:
			return h.nack(hdr, fmt.Errorf("%w: the lane carried no chunk for %s after COMMIT", wire.ErrBusy, h.frameTimeout))
		case <-connGone:
			return fmt.Errorf("stream closed while the lane carried the last chunks: %w", context.Cause(h.str.Context()))
		}
	}
}

// failed returns the transfer's failure, if any.
func (l *laneRecv) failed() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
