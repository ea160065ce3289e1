package agent

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/outbox"
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

// laneWindow is the most encoded bytes, counted from the oldest chunk not
// yet delivered, that one op keeps in flight on the lane. The core holds
// at most twice that per op (core/server_lane.go: laneWindow); keep the
// two in step.
func laneWindow(chunkSize int) int64 {
	return max(8<<20, 2*(int64(chunkSize)+4096))
}

// laneInFlight is how much one op keeps in flight now: four times the
// lane's bandwidth-delay estimate, so the rate model is never short of
// data, but no more, so that a pause (new sync parameters) takes effect
// within a few round trips; at least 1 MiB or two chunks, at most
// laneWindow.
func laneInFlight(ln *laneLink, chunkSize int) int64 {
	st := ln.s.Stats()
	rtt := st.SmoothedRTT
	if rtt <= 0 {
		rtt = st.MinRTT
	}
	bdp := int64(st.BottleneckBps / 8 * rtt.Seconds())
	lo := max(1<<20, 2*(int64(chunkSize)+4096))
	return min(max(4*bdp, lo), laneWindow(chunkSize))
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
	done   chan error
}

// laneAnswer is a frame (or the error) read from an op's stream while its
// data travels on the lane.
type laneAnswer struct {
	f   wire.Frame
	err error
}

// laneOp sends chunks from..end of the op on the lane while a reader takes
// the core's answers from the stream; it commits as soon as the last chunk
// is handed to the lane (the core waits for the lane to land it, which
// saves a round trip) and returns when the core has answered. An ACK or
// NACK that comes early (the core held the op already, or refused it)
// ends the lane transfer at once.
func (s *opSender) laneOp(ctx context.Context, str *quic.Stream, ln *laneLink, hdr *wire.OpHeader, ch *codec.Header, op *outbox.Op, from int64, pl io.ReaderAt, cb *codec.Base, res *sendResult, paused func() bool) error {
	answers := make(chan laneAnswer)
	stop := make(chan struct{})
	go func() {
		defer close(answers)
		for {
			f, err := wire.ReadFrame(str, wire.MaxFrameSize)
			select {
			case answers <- laneAnswer{f, err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	defer func() {
		close(stop)
		str.CancelRead(0)
		for range answers {
		}
	}()
	// take interprets one answer; done is true once the op is settled. A
	// RESUME_ANSWER to an eager op only says what the core skips.
	take := func(a laneAnswer, ok bool) (done bool, err error) {
		if !ok {
			return true, errConnLost
		}
		if a.err != nil {
			return true, a.err
		}
		done, _, err = s.answer(a.f, res)
		return done, err
	}
	answered, err := s.sendLane(ctx, ln, hdr.LaneTransfer, ch, op, from, pl, cb, res, paused, answers, take,
		func() error { return commit(str, op, ch) })
	if errors.Is(err, errPaused) {
		str.CancelWrite(0)
	}
	if answered || err != nil {
		return err
	}
	for {
		a, ok := <-answers
		if done, err := take(a, ok); done || err != nil {
			return err
		}
	}
}

// sendLane carries chunks from..end of the op as DATA frames on the lane,
// in batches of consecutive chunks (one lane transfer each, with the op's
// priority as urgency), keeping at most laneWindow bytes in flight. Once
// every chunk is handed to the lane it calls queued (which commits) and
// waits until the core has stored every chunk (each Send returns after
// the core's Deliver, which stores it). It returns errPaused when paused
// reports true, after the batches in flight have landed (a chunk
// boundary). While it waits, answers from the stream go to take; answered
// is true when one settled the op. On an error the batches in flight are
// abandoned: the core keeps the chunks it stored in order, and a resumed
// attempt starts after them.
func (s *opSender) sendLane(ctx context.Context, ln *laneLink, transfer uint64, ch *codec.Header, op *outbox.Op, from int64, pl io.ReaderAt, cb *codec.Base, res *sendResult, paused func() bool,
	answers <-chan laneAnswer, take func(laneAnswer, bool) (bool, error), queued func() error) (answered bool, err error) {
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	var queue []*laneBatch
	var inFlight int64
	var free [][]byte
	// settle waits for the oldest batch in flight, taking answers meanwhile.
	settle := func() (bool, error) {
		b := queue[0]
		for {
			select {
			case err := <-b.done:
				queue = queue[1:]
				inFlight -= int64(len(b.frames))
				free = append(free, b.frames[:0])
				return false, err
			case a, ok := <-answers:
				if done, err := take(a, ok); done || err != nil {
					return true, err
				}
			}
		}
	}
	drain := func() (bool, error) {
		for len(queue) > 0 {
			if answered, err := settle(); answered || err != nil {
				return answered, err
			}
		}
		return false, nil
	}
	for i := from; i < ch.Chunks(); {
		if i > from && paused != nil && paused() {
			// Let what is in flight land: it is at most a few round trips
			// of data, and the next attempt resumes after it.
			if answered, err := drain(); answered || err != nil {
				return answered, err
			}
			return false, errPaused
		}
		ln.hint()
		window := laneInFlight(ln, ch.ChunkSize)
		target := window / laneBatches
		var buf []byte
		if n := len(free); n > 0 {
			buf, free = free[n-1], free[:n-1]
		}
		first := i
		for ; i < ch.Chunks() && int64(len(buf)) < target; i++ {
			if i > first && paused != nil && paused() {
				break // send what is encoded; the check above pauses
			}
			var err error
			if buf, err = s.dataFrame(buf, ch, op, i, pl, cb, res); err != nil {
				return false, err
			}
		}
		for len(queue) > 0 && (inFlight+int64(len(buf)) > window || len(queue) >= laneBatches) {
			if answered, err := settle(); answered || err != nil {
				return answered, err
			}
		}
		b := &laneBatch{frames: buf, done: make(chan error, 1)}
		queue = append(queue, b)
		inFlight += int64(len(buf))
		wg.Add(1)
		go func(id [16]byte) {
			defer wg.Done()
			b.done <- ln.s.Send(lctx, id, 0, b.frames, int8(op.Priority))
		}(laneID(transfer, first))
	}
	if err := queued(); err != nil {
		return false, err
	}
	return drain()
}
