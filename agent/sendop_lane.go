package agent

import (
	"context"
	"encoding/binary"
	"io"
	"sync"
	"sync/atomic"

	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire/lane"
)

// laneLink is a connection's data lane (wire/lane) and the counter that
// numbers its transfers: every attempt of an op on the connection gets a
// fresh number, so lane data of an abandoned attempt never mixes with a
// new one.
type laneLink struct {
	s   *lane.Session
	seq atomic.Uint64
}

func (l *laneLink) nextTransfer() uint64 { return l.seq.Add(1) }

// laneWindow is the most encoded bytes, counted from the oldest chunk not
// yet delivered, that one op keeps in flight on the lane. The core holds
// at most twice that per op (core/server_lane.go: laneWindow); keep the
// two in step.
func laneWindow(chunkSize int) int64 {
	return max(8<<20, 2*(int64(chunkSize)+4096))
}

// laneID names the lane transfer of one chunk of an attempt.
func laneID(transfer uint64, chunk int64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], transfer)
	binary.BigEndian.PutUint64(id[8:], uint64(chunk))
	return id
}

// laneChunk is one chunk's DATA frame in flight on the lane.
type laneChunk struct {
	frame []byte
	done  chan error
}

// sendLane carries chunks from..end of the op as DATA frames on the lane,
// one transfer per chunk with the op's priority as urgency, keeping at most
// laneWindow bytes in flight; it returns once the core has stored every
// chunk (each Send returns after the core's Deliver, which stores it), or
// errPaused at a chunk boundary when paused reports true. On any early
// return the chunks in flight are abandoned: the core keeps the ones it
// stored in order, and a resumed attempt starts after them.
func (s *opSender) sendLane(ctx context.Context, ln *laneLink, transfer uint64, ch *codec.Header, op *outbox.Op, from int64, pl io.ReaderAt, cb *codec.Base, res *sendResult, paused func() bool) error {
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()

	window := laneWindow(ch.ChunkSize)
	var queue []*laneChunk
	var inFlight int64
	var free [][]byte
	// settle waits for the oldest chunk in flight.
	settle := func() error {
		c := queue[0]
		err := <-c.done
		queue = queue[1:]
		inFlight -= int64(len(c.frame))
		free = append(free, c.frame[:0])
		return err
	}
	for i := from; i < ch.Chunks(); i++ {
		if i > from && paused != nil && paused() {
			return errPaused
		}
		var buf []byte
		if n := len(free); n > 0 {
			buf, free = free[n-1], free[:n-1]
		}
		frame, err := s.dataFrame(buf, ch, op, i, pl, cb, res)
		if err != nil {
			return err
		}
		for len(queue) > 0 && inFlight+int64(len(frame)) > window {
			if err := settle(); err != nil {
				return err
			}
		}
		c := &laneChunk{frame: frame, done: make(chan error, 1)}
		queue = append(queue, c)
		inFlight += int64(len(frame))
		wg.Add(1)
		go func(id [16]byte) {
			defer wg.Done()
			c.done <- ln.s.Send(lctx, id, 0, c.frame, int8(op.Priority))
		}(laneID(transfer, i))
	}
	for len(queue) > 0 {
		if err := settle(); err != nil {
			return err
		}
	}
	return nil
}
