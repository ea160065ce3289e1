package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// Errors of one op's transfer. Anything else is a connection problem: the
// op is released and sent again on the next connection.
var (
	// errPaused means the transfer stopped at a chunk boundary because the
	// sync parameters changed; the core keeps what it has and the op
	// resumes under the new parameters.
	errPaused = errors.New("paused at a chunk boundary for new sync parameters")
)

// ownError is a failure of this agent's own side of an op's transfer:
// reading the op's payload or its delta base, or encoding its frames. It
// says nothing of the core, whatever it wraps (a base that ends early is
// io.ErrUnexpectedEOF to the codec): brokenAnswer never takes it for the
// core's answer.
type ownError struct{ err error }

func (e *ownError) Error() string { return e.err.Error() }
func (e *ownError) Unwrap() error { return e.err }

// own marks err, if not nil, as this agent's own failure (ownError).
func own(err error) error {
	if err == nil {
		return nil
	}
	return &ownError{err}
}

// writeFrame writes f to w: a frame that does not encode is this agent's
// own failure (ownError), a write that fails is the stream's.
func writeFrame(w io.Writer, f wire.Frame) error {
	b, err := f.Append(nil)
	if err != nil {
		return own(fmt.Errorf("write %s frame: %w", f.Type(), err))
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write %s frame: %w", f.Type(), err)
	}
	return nil
}

// sendResult is what one op's transfer achieved.
type sendResult struct {
	acked      bool       // the core stored the op (or had it already)
	mode       codec.Mode // mode of the header (delta modes fall back per chunk)
	plainBytes int64      // plain bytes this transfer carried
	wireBytes  int64      // encoded bytes this transfer put in DATA frames
	lane       bool       // the DATA frames went on the data lane
	nack       *wire.Nack // the core's refusal, if any
	hash       codec.Hash // payload hash
}

// attempt is one try at sending an op in full, as the session asks for it.
type attempt struct {
	op     *outbox.Op
	pl     io.ReaderAt // the op's payload
	base   *base       // the key's version last stored at the core, or nil
	params linkmon.SyncParameters
	// eager says the core cannot hold any of the op (see session.eager):
	// on the lane its data follows the header at once instead of a round
	// trip later.
	eager bool
	// paused is polled at chunk boundaries; when it reports true the
	// transfer stops with errPaused. Nil never pauses.
	paused func() bool
	// prog counts the bytes sent, for status; nil counts nothing.
	prog *progress
	// room is the budget's bytes left before the op's priority stops
	// (budget.go); nil has no budget.
	room func() int64
	// pre is the op's presend, if one is waiting on this connection's
	// lane (presend.go).
	pre *presend
	// wrote is called once the op's data is written to its stream (its
	// header, for an op of several chunks): less urgent ops wait for it
	// (writeorder.go). Nil calls nothing.
	wrote func()
}

// opTransfer is an attempt's op as it goes out: the codec header its
// OP_HEADER announces, the delta base if any, the pause check, and the
// result its DATA frames count into.
type opTransfer struct {
	op     *outbox.Op
	pl     io.ReaderAt
	ch     codec.Header
	cb     *codec.Base // nil unless ch.Mode is a delta
	paused func() bool
	res    *sendResult
	prog   *progress
	room   func() int64 // see attempt.room
	wrote  func()       // see attempt.wrote
}

// written reports that the transfer's data is written to its stream.
func (t *opTransfer) written() {
	if t.wrote != nil {
		t.wrote()
	}
}

// pauseBefore reports whether the transfer stops before chunk i, a chunk
// boundary after first.
func (t *opTransfer) pauseBefore(i, first int64) bool {
	return i > first && t.paused != nil && t.paused()
}

// header is the transfer's OP_HEADER, without the lane's fields.
func (t *opTransfer) header() *wire.OpHeader {
	op := t.op
	hdr := &wire.OpHeader{
		ID: op.ID, Key: op.Key, Endpoint: op.Endpoint, Priority: op.Priority,
		Kind: op.Kind, Mode: uint8(t.ch.Mode), PlainSize: uint64(op.Size),
		ChunkSize: uint32(t.ch.ChunkSize), PayloadHash: t.ch.Hash, Expires: op.ExpiresAt,
		Summarized: op.SummarySent,
	}
	if t.cb != nil {
		hdr.HasBase, hdr.BaseHash = true, t.cb.Hash
	}
	return hdr
}

// opSender sends one op on its own QUIC stream. It is not safe for
// concurrent use; the sender keeps one per worker.
type opSender struct {
	enc     codec.Encoder
	plain   []byte
	encoded []byte
	frame   []byte
	hashes  map[edgesync.OpID]codec.Hash // payload hashes of ops sent before (across retries)
}

func newOpSender() *opSender {
	return &opSender{hashes: map[edgesync.OpID]codec.Hash{}}
}

// codecMode picks the codec mode for an op under the sync parameters: a
// delta only where there is a base of a keyed op, else plain or zstd.
func codecMode(p linkmon.SyncParameters, haveBase bool) codec.Mode {
	compress := p.Compression && p.Level > 0
	switch p.Mode {
	case edgesync.SyncFull:
		if compress {
			return codec.ModeZstd
		}
		return codec.ModeFull
	case edgesync.SyncFullZstd:
		return codec.ModeZstd
	case edgesync.SyncDelta:
		if haveBase {
			return codec.ModeDelta
		}
	case edgesync.SyncDeltaZstd, edgesync.SyncStoreAndForward:
		if haveBase {
			return codec.ModeDeltaZstd
		}
	}
	if compress {
		return codec.ModeZstd
	}
	return codec.ModeFull
}

func codecLevel(p linkmon.SyncParameters) codec.Level {
	if p.Level >= int(codec.LevelFastest) && p.Level <= int(codec.LevelBest) {
		return codec.Level(p.Level)
	}
	return codec.LevelDefault
}

// payloadHash returns the SHA-256 the op's OP_HEADER carries: the hash
// the outbox took of the producer's bytes as Enqueue received them, so
// that the core checks what it stores against what was put, and damage
// anywhere in between (the outbox's disk included) is caught. Only an op
// stored by outbox format 1 has none; its payload is read once to hash it,
// and the hash is remembered for retries.
func (s *opSender) payloadHash(op *outbox.Op, pl io.ReaderAt) (codec.Hash, error) {
	if op.Hash != [32]byte{} {
		return codec.Hash(op.Hash), nil
	}
	if h, ok := s.hashes[op.ID]; ok {
		return h, nil
	}
	h, n, err := codec.HashOf(io.NewSectionReader(pl, 0, op.Size))
	if err != nil {
		return codec.Hash{}, own(fmt.Errorf("hash payload: %w", err))
	}
	if n != op.Size {
		return codec.Hash{}, own(fmt.Errorf("hash payload: read %d of %d bytes", n, op.Size))
	}
	if len(s.hashes) > 4096 {
		clear(s.hashes) // a cache, not a record
	}
	s.hashes[op.ID] = h
	return h, nil
}

// forget drops what the sender remembers of an op that is done.
func (s *opSender) forget(id edgesync.OpID) { delete(s.hashes, id) }

// sendSummary sends only the op's metadata and producer summary, and
// calls wrote once it is written.
func (s *opSender) sendSummary(ctx context.Context, conn *quic.Conn, op *outbox.Op, pl io.ReaderAt, wrote func()) (sendResult, error) {
	var res sendResult
	h, err := s.payloadHash(op, pl)
	if err != nil {
		return res, err
	}
	res.hash = h
	// A summary goes ahead of every ordinary op's full data (backfill
	// included): its stream's urgency is high's at most.
	str, done, err := openOpStream(ctx, conn, min(op.Priority, edgesync.High))
	if err != nil {
		return res, err
	}
	defer done()
	sum := &wire.Summary{ID: op.ID, Key: op.Key, Size: uint64(op.Size), Hash: h, Time: op.EnqueuedAt, Producer: op.Summary}
	if err := writeFrame(str, sum); err != nil {
		return res, err
	}
	wrote()
	if err := str.Close(); err != nil {
		return res, err
	}
	f, err := wire.ReadFrame(str, wire.MaxFrameSize)
	if err != nil {
		return res, err
	}
	switch f.(type) {
	case *wire.Ack, *wire.Nack, *wire.Error:
		_, _, err = answer(f, op.ID, &res)
		return res, err
	}
	return res, fmt.Errorf("%w: %s answers a summary", wire.ErrBadRequest, f.Type())
}

// openOpStream opens the stream of one op, at the op's priority, and
// cancels it when ctx ends; done releases it.
func openOpStream(ctx context.Context, conn *quic.Conn, p edgesync.Priority) (str *quic.Stream, done func(), err error) {
	str, err = conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, nil, err
	}
	str.SetPriority(int8(p), false)
	stop := context.AfterFunc(ctx, func() { str.CancelWrite(0); str.CancelRead(0) })
	return str, func() { stop(); str.CancelRead(0) }, nil
}

// send transfers the whole op: OP_HEADER, then (after the core says how
// much it holds) the missing chunks, then COMMIT; it returns when the core
// has answered. With ln (the connection's data lane, nil if none), the
// DATA frames of an op of more than one chunk travel on the lane instead
// of the stream.
func (s *opSender) send(ctx context.Context, conn *quic.Conn, ln *laneLink, a *attempt) (sendResult, error) {
	var res sendResult
	t, err := s.encoding(a, &res)
	if err != nil {
		return res, err
	}
	str, done, err := openOpStream(ctx, conn, a.op.Priority)
	if err != nil {
		return res, err
	}
	defer done()
	var lt *laneTransfer
	if ln != nil {
		lt = newLaneTransfer(s, ln, str, 0, t)
		if lt.adopt(a) { // the op's presend, if any, with its encoding
			defer lt.pre.stop() // also when the attempt ends before run
		}
	}
	hdr := t.header()
	// A one-chunk op goes out whole at once: waiting for the core's answer
	// would cost a round trip per small op. The core skips what it holds.
	oneChunk := a.op.Size <= int64(t.ch.ChunkSize)
	onLane := ln != nil && !oneChunk
	if onLane {
		if lt.pre == nil {
			lt.num = ln.nextTransfer()
		}
		hdr.Lane, hdr.LaneTransfer, hdr.Eager = true, lt.num, a.eager || lt.pre != nil
		res.lane = true
	}
	if oneChunk && !onLane {
		return res, s.sendWhole(str, t, hdr)
	}
	if err := writeFrame(str, hdr); err != nil {
		return res, err
	}
	t.written() // the stream is open at its urgency: what follows keeps its place
	from := int64(0)
	if !oneChunk && !hdr.Eager {
		held, settled, err := resumePoint(str, a.op.ID, &res)
		if settled || err != nil {
			return res, err
		}
		from = held / int64(t.ch.ChunkSize)
		t.prog.resumed(from * int64(t.ch.ChunkSize))
	}
	if onLane {
		err = lt.run(ctx, max(from, lt.next))
	} else {
		err = s.sendOnStream(str, t, from)
	}
	return res, err
}

// chunkSizeOf is the chunk size ops go in under p: the parameters', within
// the codec's bounds and small enough that a chunk's encoding, with the
// codec's framing, fits a DATA frame (fiber's 16 MiB chunk would not).
func chunkSizeOf(p linkmon.SyncParameters) int {
	return max(codec.MinChunkSize, min(p.ChunkSize, maxPlainChunk))
}

// maxPlainChunk is the largest chunk of plain bytes whose encoding fits a
// DATA frame's chunk (a variable for a test of a frame that does not).
var maxPlainChunk = min(codec.MaxChunkSize, wire.MaxChunkSize-codec.ChunkFraming)

// encoding decides how an attempt encodes its op: the payload's hash, the
// codec mode (a delta only against the base of a state op), and the chunk
// size the parameters ask for, within the codec's bounds.
func (s *opSender) encoding(a *attempt, res *sendResult) (*opTransfer, error) {
	op := a.op
	h, err := s.payloadHash(op, a.pl)
	if err != nil {
		return nil, err
	}
	res.hash = h
	mode := codecMode(a.params, a.base != nil && op.Kind == edgesync.StateOp)
	var cb *codec.Base
	if mode.IsDelta() {
		cb = &codec.Base{R: a.base, Size: a.base.Size, Hash: codec.Hash(a.base.Hash)}
	}
	ch, err := codec.NewHeader(mode, codecLevel(a.params), chunkSizeOf(a.params), op.Size, h, cb)
	if err != nil {
		return nil, own(err)
	}
	res.mode = mode
	return &opTransfer{op: op, pl: a.pl, ch: ch, cb: cb, paused: a.paused, res: res, prog: a.prog, room: a.room, wrote: a.wrote}, nil
}

// resumePoint reads the core's answer to the header of an op of more than
// one chunk: held is how many plain bytes it holds, unless settled (it has
// the op already, or refused it).
func resumePoint(str io.Reader, id edgesync.OpID, res *sendResult) (held int64, settled bool, err error) {
	f, err := wire.ReadFrame(str, wire.MaxFrameSize)
	if err != nil {
		return 0, false, err
	}
	settled, held, err = answer(f, id, res)
	return held, settled, err
}

// sendOnStream sends chunks from..end on the op's stream, commits and
// waits for the core's answer. It stops with errPaused at a chunk
// boundary when the transfer's pause check says so.
func (s *opSender) sendOnStream(str *quic.Stream, t *opTransfer, from int64) error {
	for i := from; i < t.ch.Chunks(); i++ {
		if t.pauseBefore(i, from) {
			str.CancelWrite(0)
			return errPaused
		}
		if err := s.sendChunk(str, t, i); err != nil {
			return err
		}
		t.prog.doneChunk(&t.ch, i)
	}
	if err := commit(str, t); err != nil {
		return err
	}
	return awaitAnswer(str, t)
}

// awaitAnswer reads the core's answer to a committed op.
func awaitAnswer(str io.Reader, t *opTransfer) error {
	for {
		f, err := wire.ReadFrame(str, wire.MaxFrameSize)
		if err != nil {
			return err
		}
		if settled, _, err := answer(f, t.op.ID, t.res); settled || err != nil {
			return err
		}
		// A RESUME_ANSWER to a one-chunk op: the ACK follows.
	}
}

// commit ends the op on its stream: every chunk is sent (or, on the lane,
// handed to it).
func commit(str *quic.Stream, t *opTransfer) error {
	if err := writeFrame(str, &wire.Commit{ID: t.op.ID, Chunks: uint64(t.ch.Chunks())}); err != nil {
		return err
	}
	return str.Close()
}

// answer interprets the core's reply about op id. settled is true on ACK
// or NACK (or a RESUME_ANSWER that says the core has the op); held is set
// on any other RESUME_ANSWER. An answer about another op breaks the
// protocol: it settles nothing of this one (an ACK taken so deleted the
// op, which no core stored).
func answer(f wire.Frame, id edgesync.OpID, res *sendResult) (settled bool, held int64, err error) {
	switch f := f.(type) {
	case *wire.Ack:
		if !slices.Contains(f.IDs, id) {
			return true, 0, fmt.Errorf("%w: the core acknowledged %v where op %s's answer was due", wire.ErrBadRequest, f.IDs, id)
		}
		res.acked = true
		return true, 0, nil
	case *wire.Nack:
		if f.ID != id {
			return true, 0, fmt.Errorf("%w: the core refused op %s where op %s's answer was due", wire.ErrBadRequest, f.ID, id)
		}
		res.nack = f
		return true, 0, nil
	case *wire.ResumeAnswer:
		if f.ID != id {
			return true, 0, fmt.Errorf("%w: the core answered the header of op %s where op %s's answer was due", wire.ErrBadRequest, f.ID, id)
		}
		if f.Complete {
			res.acked = true
			return true, 0, nil
		}
		return false, int64(f.Held), nil
	case *wire.Error:
		return true, 0, wire.ErrorFromCode(f.Code, f.Msg)
	}
	return true, 0, fmt.Errorf("%w: unexpected %s from the core", wire.ErrBadRequest, f.Type())
}

func (s *opSender) sendChunk(w io.Writer, t *opTransfer, i int64) error {
	frame, err := s.dataFrame(s.frame[:0], t, i)
	if err != nil {
		return err
	}
	s.frame = frame
	_, err = w.Write(frame)
	return err
}

// dataFrame reads and encodes chunk i and appends its DATA frame to dst.
// Its errors are this agent's own (ownError).
func (s *opSender) dataFrame(dst []byte, t *opTransfer, i int64) ([]byte, error) {
	off, n, _ := t.ch.ChunkRange(i)
	if cap(s.plain) < n {
		s.plain = make([]byte, n)
	}
	plain := s.plain[:n]
	if k, err := t.pl.ReadAt(plain, off); k < n {
		return dst, own(fmt.Errorf("read payload of %s at %d: %w", t.op.ID, off, err))
	}
	enc, err := s.enc.EncodeChunk(s.encoded[:0], &t.ch, i, plain, t.cb)
	if err != nil {
		return dst, own(fmt.Errorf("encode chunk %d of %s: %w", i, t.op.ID, err))
	}
	s.encoded = enc
	d := &wire.Data{ID: t.op.ID, Offset: uint64(off), Chunk: enc}
	out, err := d.Append(dst)
	if err != nil {
		return dst, own(err)
	}
	t.res.plainBytes += int64(n)
	t.res.wireBytes += int64(len(enc))
	return out, nil
}
