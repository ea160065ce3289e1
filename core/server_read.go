package core

import (
	"bufio"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// An op stream's bytes reach its wire.Reader through a read-ahead buffer
// and a frame deadline set only when the handler waits (docs/core.md,
// "A thousand agents"). Read unbuffered, each frame cost several of
// quic-go's stream Reads (its header's bytes, then its body) and a
// deadline of its own; an agent with CapOpsPerStream writes a whole
// stream of small ops at once, so the buffer takes them in a few Reads.
// The buffer is reserved in the connection's frame memory while the
// stream holds it; a stream whose reservation does not fit reads
// unbuffered, as before, and is refused nothing for it. A connection's
// streams hold at most maxReadAheads buffers at once: a buffer is held
// while its stream waits, and the streams of every connection, waiting,
// would otherwise hold 4 KiB each of the frame memory that frames need
// (1000 connections of 64 streams: 250 MiB of the default 256 MiB;
// TestReadAheadLeavesFrameMemory).

// readAheadSize is an op stream's read-ahead buffer: a quarter of a
// stream of 16 small ops, and a small part of the 64 KiB that a
// connection's least frame memory (MinConnFrameMemory) has beyond one
// maximal DATA frame and its chunk.
const readAheadSize = 4 << 10

// maxReadAheads is the most read-ahead buffers one connection's streams
// hold at once: 16 KiB, a small part of the 64 KiB beyond one maximal
// DATA frame and its chunk of a connection's least frame memory, and at
// most 16 MiB of the default 256 MiB for the most connections a core
// takes by default (1000). A stream beyond it reads unbuffered.
const maxReadAheads = 4

// readAheadSlots counts a connection's streams that hold a read-ahead
// buffer (maxReadAheads).
type readAheadSlots struct{ n atomic.Int32 }

// take reports whether a stream may hold a read-ahead buffer; a true
// take is given back by give.
func (s *readAheadSlots) take() bool {
	if s == nil {
		return false
	}
	if s.n.Add(1) > maxReadAheads {
		s.n.Add(-1)
		return false
	}
	return true
}

func (s *readAheadSlots) give() { s.n.Add(-1) }

var readAheads = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readAheadSize) }}

// frameDeadline is an op stream's reader under the read-ahead buffer: it
// bounds each wait for a frame's bytes by the frame timeout. The
// deadline is set at the first Read of a frame's bytes from the stream,
// not at the frame's start: a frame the buffer holds whole waits for
// nothing. So every frame still arrives within the frame timeout of the
// first wait for it, as ServerConfig.FrameTimeout says.
type frameDeadline struct {
	str     *quic.Stream
	timeout time.Duration
	set     bool // this frame's deadline is set
}

func (d *frameDeadline) Read(p []byte) (int, error) {
	if !d.set {
		setReadTimeout(d.str, d.timeout)
		d.set = true
	}
	return d.str.Read(p)
}

// next starts a frame: its deadline is set when it is first waited for.
func (d *frameDeadline) next() { d.set = false }

// setNow sets the deadline from now, for a reader that may wait in
// another goroutine while this one extends it (the lane's COMMIT).
func (d *frameDeadline) setNow() {
	setReadTimeout(d.str, d.timeout)
	d.set = true
}

// streamInput is what an op handler reads its stream through: the
// deadline, and the read-ahead buffer when it fitted the frame memory.
type streamInput struct {
	deadline frameDeadline
	buf      *bufio.Reader // nil: unbuffered
	mem      *memBudget
	slots    *readAheadSlots
}

// open takes a read-ahead buffer if the connection's streams hold fewer
// than maxReadAheads (slots; nil: none may) and the frame memory has
// room for it, and returns the reader the stream's frames are read from.
func (in *streamInput) open(str *quic.Stream, timeout time.Duration, mem *memBudget, slots *readAheadSlots) io.Reader {
	in.deadline = frameDeadline{str: str, timeout: timeout}
	if !slots.take() {
		return &in.deadline
	}
	if !mem.tryReserve(readAheadSize) {
		slots.give()
		return &in.deadline // nothing is refused: it is read in smaller steps
	}
	in.mem, in.slots = mem, slots
	in.buf = readAheads.Get().(*bufio.Reader)
	in.buf.Reset(&in.deadline)
	return in.buf
}

// reader is what the stream is read through (after open).
func (in *streamInput) reader() io.Reader {
	if in.buf != nil {
		return in.buf
	}
	return &in.deadline
}

// close gives the buffer back, with its reservation; what it held unread
// is dropped.
func (in *streamInput) close() {
	if in.buf == nil {
		return
	}
	in.buf.Reset(nil)
	readAheads.Put(in.buf)
	in.buf = nil
	in.mem.Release(readAheadSize)
	in.slots.give()
}
