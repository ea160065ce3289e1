package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/wire"
	"github.com/edge-sync/edge-sync/wire/lane"
)

// laneLink is a connection's data lane (wire/lane) and the counter that
// numbers its transfers: every attempt of an op on the connection gets a
// fresh number, so lane data of an abandoned attempt never mixes with a
// new one.
type laneLink struct {
	s   *lane.Session
	seq atomic.Uint64
	// capacity is the link monitor's latest probe estimate (bit/s) and
	// when it was taken; nil when the lane started from a known rate.
	capacity func() (float64, time.Time)
	started  time.Time
	hinted   atomic.Bool

	// pre are the presends started on this lane, by op (presend.go);
	// preEnded once its connection ended.
	preMu    sync.Mutex
	pre      map[edgesync.OpID]*presend
	preEnded bool
	// preAdopted and preAbandoned count presends an attempt took and
	// presends given up.
	preAdopted, preAbandoned atomic.Int64
}

// hint hands the lane, while it starts up cold, the first capacity the
// link monitor measures on this connection (lane.Session.Hint): the lane
// cruises at it or grows from it by a quarter a round, instead of growing
// 2.89-fold a round past the link's rate into its queue.
func (l *laneLink) hint() {
	if l.capacity == nil || l.hinted.Load() {
		return
	}
	bps, at := l.capacity()
	if bps <= 0 || at.Before(l.started) {
		return
	}
	l.hinted.Store(true)
	l.s.Hint(int64(bps))
}

func (l *laneLink) nextTransfer() uint64 { return l.seq.Add(1) }

// window is how much of one op's data the lane keeps in flight now: four
// times its bandwidth-delay estimate, so the rate model is never short of
// data, but no more, so that a pause (new sync parameters) takes effect
// within a few round trips; at least 1 MiB or two chunks, at most
// lane.OpWindow.
func (l *laneLink) window(chunkSize int) int64 {
	st := l.s.Stats()
	rtt := st.SmoothedRTT
	if rtt <= 0 {
		rtt = st.MinRTT
	}
	bdp := int64(st.BottleneckBps / 8 * rtt.Seconds())
	lo := max(1<<20, 2*(int64(chunkSize)+4096))
	return min(max(4*bdp, lo), lane.OpWindow(chunkSize))
}

// laneBatches is how many lane transfers one op keeps in flight at most
// (a session allows lane.MaxOpenTransfers in all): the window is cut into
// this many batches of consecutive chunks, so small chunks do not take a
// transfer each.
const laneBatches = 8

// laneID names the lane transfer of an attempt that starts at chunk first.
func laneID(transfer uint64, first int64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], transfer)
	binary.BigEndian.PutUint64(id[8:], uint64(first))
	return id
}

// laneBatch is the DATA frames of consecutive chunks in flight on the lane
// as one transfer.
type laneBatch struct {
	frames []byte
	end    int64 // payload offset after the batch's last chunk
	done   chan error
}

// laneAnswer is a frame (or the error) read from an op's stream while its
// data travels on the lane.
type laneAnswer struct {
	f   wire.Frame
	err error
}

// laneTransfer carries one attempt's DATA frames on the lane, in batches
// of consecutive chunks (one lane transfer each, with the op's priority as
// urgency), while a reader takes the core's answers from the op's stream.
// It owns its batches in flight, its progress through the chunks and the
// answers; run drives it.
type laneTransfer struct {
	*opTransfer           // the op, its encoding, pause check and result
	enc         *opSender // encodes chunks into DATA frames
	ln          *laneLink
	str         *quic.Stream
	num         uint64 // OpHeader.LaneTransfer
	// pre, if set, is the presend whose batches the transfer adopted: its
	// Send calls are stopped with the transfer's own.
	pre *presend

	answers chan laneAnswer // from the stream's reader, closed when it ends
	stop    chan struct{}   // closed: the reader stops

	next     int64          // next chunk to encode
	queue    []*laneBatch   // batches in flight, oldest first
	inFlight int64          // their encoded bytes
	free     [][]byte       // buffers of settled batches, for reuse
	sends    sync.WaitGroup // the batches' Send calls
}

func newLaneTransfer(enc *opSender, ln *laneLink, str *quic.Stream, num uint64, t *opTransfer) *laneTransfer {
	return &laneTransfer{opTransfer: t, enc: enc, ln: ln, str: str, num: num,
		answers: make(chan laneAnswer), stop: make(chan struct{})}
}

// run sends chunks from..end on the lane; it commits as soon as the last
// chunk is handed to the lane (the core waits for the lane to land it,
// which saves a round trip) and returns when the core has answered. An
// ACK or NACK that comes early (the core held the op already, or refused
// it) ends the transfer at once.
func (l *laneTransfer) run(ctx context.Context, from int64) error {
	l.readAnswers()
	defer l.stopAnswers()
	answered, err := l.send(ctx, from)
	if errors.Is(err, errPaused) {
		l.str.CancelWrite(0)
	}
	if answered || err != nil {
		return err
	}
	for {
		a, ok := <-l.answers
		if settled, err := l.take(a, ok); settled || err != nil {
			return err
		}
	}
}

// readAnswers starts the reader of the op's stream: it hands each frame,
// and the error that ends the stream, to answers until stopAnswers.
func (l *laneTransfer) readAnswers() {
	go func() {
		defer close(l.answers)
		for {
			f, err := wire.ReadFrame(l.str, wire.MaxFrameSize)
			select {
			case l.answers <- laneAnswer{f, err}:
			case <-l.stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
}

// stopAnswers stops the reader and waits until it has ended.
func (l *laneTransfer) stopAnswers() {
	close(l.stop)
	l.str.CancelRead(0)
	for range l.answers {
	}
}

// take interprets one answer; settled is true once the op is settled. A
// RESUME_ANSWER to an eager op only says what the core skips.
func (l *laneTransfer) take(a laneAnswer, ok bool) (settled bool, err error) {
	if !ok {
		return true, errConnLost
	}
	if a.err != nil {
		return true, a.err
	}
	settled, _, err = answer(a.f, l.op.ID, l.res)
	return settled, err
}

// send carries chunks from..end as batches on the lane, keeping at most
// the lane's window in flight. Once every chunk is handed to the lane it
// commits and waits until the core has stored every chunk (each Send
// returns after the core's Deliver, which stores it). It returns errPaused
// when the pause check says so, after the batches in flight have landed
// (a chunk boundary). answered is true when an answer from the stream
// settled the op meanwhile. On an error the batches in flight are
// abandoned: the core keeps the chunks it stored in order, and a resumed
// attempt starts after them.
func (l *laneTransfer) send(ctx context.Context, from int64) (answered bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		l.sends.Wait()
		if l.pre != nil {
			l.pre.stop()
		}
	}()
	for l.next = from; l.next < l.ch.Chunks(); {
		if l.pauseBefore(l.next, from) {
			// Let what is in flight land: it is at most a few round trips
			// of data, and the next attempt resumes after it.
			if answered, err := l.drain(); answered || err != nil {
				return answered, err
			}
			return false, errPaused
		}
		l.ln.hint()
		window := l.budgetWindow(l.ln.window(l.ch.ChunkSize))
		first := l.next
		frames, err := l.batch(window / laneBatches)
		if err != nil {
			return false, err
		}
		if answered, err := l.makeRoom(window, int64(len(frames))); answered || err != nil {
			return answered, err
		}
		l.launch(ctx, frames, first)
	}
	if err := commit(l.str, l.opTransfer); err != nil {
		return false, err
	}
	return l.drain()
}

// batch encodes the DATA frames of the chunks from l.next on until they
// reach target bytes, the op ends, or the transfer pauses.
func (l *laneTransfer) batch(target int64) ([]byte, error) {
	var buf []byte
	if n := len(l.free); n > 0 {
		buf, l.free = l.free[n-1], l.free[:n-1]
	}
	first := l.next
	for ; l.next < l.ch.Chunks() && int64(len(buf)) < target; l.next++ {
		if l.pauseBefore(l.next, first) {
			break // send what is encoded; send's check pauses
		}
		var err error
		if buf, err = l.enc.dataFrame(buf, l.opTransfer, l.next); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// makeRoom settles the oldest batches until one of size bytes fits in the
// window and a batch may be added.
func (l *laneTransfer) makeRoom(window, size int64) (answered bool, err error) {
	for len(l.queue) > 0 && (l.inFlight+size > window || len(l.queue) >= laneBatches) {
		if answered, err := l.settle(); answered || err != nil {
			return answered, err
		}
	}
	return false, nil
}

// launch sends the frames of the chunks from first on as one lane
// transfer.
func (l *laneTransfer) launch(ctx context.Context, frames []byte, first int64) {
	b := &laneBatch{frames: frames, done: make(chan error, 1)}
	if l.next > first {
		off, n, _ := l.ch.ChunkRange(l.next - 1)
		b.end = off + int64(n)
	}
	l.queue = append(l.queue, b)
	l.inFlight += int64(len(frames))
	id, urgency := laneID(l.num, first), int8(l.op.Priority)
	l.sends.Go(func() { b.done <- l.ln.s.Send(ctx, id, 0, b.frames, urgency) })
}

// settle waits for the oldest batch in flight to land, taking answers
// meanwhile.
func (l *laneTransfer) settle() (answered bool, err error) {
	b := l.queue[0]
	for {
		select {
		case err := <-b.done:
			l.queue = l.queue[1:]
			l.inFlight -= int64(len(b.frames))
			l.free = append(l.free, b.frames[:0])
			if err == nil && b.end > 0 {
				l.prog.done(b.end) // the core has stored it
			}
			return false, err
		case a, ok := <-l.answers:
			if settled, err := l.take(a, ok); settled || err != nil {
				return true, err
			}
		}
	}
}

// drain waits for every batch in flight to land.
func (l *laneTransfer) drain() (answered bool, err error) {
	for len(l.queue) > 0 {
		if answered, err := l.settle(); answered || err != nil {
			return answered, err
		}
	}
	return false, nil
}
