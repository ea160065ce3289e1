package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

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

// sendResult is what one op's transfer achieved.
type sendResult struct {
	acked      bool          // the core stored the op (or had it already)
	summary    bool          // only the summary was sent and stored
	mode       codec.Mode    // mode of the header (delta modes fall back per chunk)
	plainBytes int64         // plain bytes this transfer carried
	wireBytes  int64         // encoded bytes this transfer put in DATA frames
	lane       bool          // the DATA frames went on the data lane
	nack       *wire.Nack    // the core's refusal, if any
	took       time.Duration // from stream open to the answer
	hash       codec.Hash    // payload hash
	base       *base         // base used, if a delta (caller closes)
	params     linkmon.SyncParameters
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

// payloadHash returns the SHA-256 of the op's payload, reading it once per
// op and remembering it for retries.
func (s *opSender) payloadHash(op *outbox.Op, pl io.ReaderAt) (codec.Hash, error) {
	if h, ok := s.hashes[op.ID]; ok {
		return h, nil
	}
	h, n, err := codec.HashOf(io.NewSectionReader(pl, 0, op.Size))
	if err != nil {
		return codec.Hash{}, fmt.Errorf("hash payload: %w", err)
	}
	if n != op.Size {
		return codec.Hash{}, fmt.Errorf("hash payload: read %d of %d bytes", n, op.Size)
	}
	if len(s.hashes) > 4096 {
		clear(s.hashes) // a cache, not a record
	}
	s.hashes[op.ID] = h
	return h, nil
}

// forget drops what the sender remembers of an op that is done.
func (s *opSender) forget(id edgesync.OpID) { delete(s.hashes, id) }

// sendSummary sends only the op's metadata and producer summary.
func (s *opSender) sendSummary(ctx context.Context, conn *quic.Conn, op *outbox.Op, pl io.ReaderAt) (sendResult, error) {
	res := sendResult{summary: true}
	h, err := s.payloadHash(op, pl)
	if err != nil {
		return res, err
	}
	res.hash = h
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return res, err
	}
	defer str.CancelRead(0)
	str.SetPriority(int8(op.Priority), false)
	start := time.Now()
	stopWatch := context.AfterFunc(ctx, func() { str.CancelWrite(0); str.CancelRead(0) })
	defer stopWatch()
	sum := &wire.Summary{ID: op.ID, Key: op.Key, Size: uint64(op.Size), Hash: h, Time: op.EnqueuedAt, Producer: op.Summary}
	if err := wire.WriteFrame(str, sum); err != nil {
		return res, err
	}
	if err := str.Close(); err != nil {
		return res, err
	}
	f, err := wire.ReadFrame(str, wire.MaxFrameSize)
	if err != nil {
		return res, err
	}
	res.took = time.Since(start)
	switch f := f.(type) {
	case *wire.Ack:
		res.acked = true
	case *wire.Nack:
		res.nack = f
	case *wire.Error:
		return res, wire.ErrorFromCode(f.Code, f.Msg)
	default:
		return res, fmt.Errorf("%w: %s answers a summary", wire.ErrBadRequest, f.Type())
	}
	return res, nil
}

// send transfers the whole op under p: header, then (after the core says
// how much it holds) the missing chunks, then commit; it returns when the
// core has answered. paused is polled at each chunk boundary.
// With ln (the connection's data lane, nil if none), the DATA frames of an
// op of more than one chunk travel on the lane instead of the stream; with
// eager as well (the op was never tried, so the core holds none of it),
// they follow the header at once instead of a round trip later.
func (s *opSender) send(ctx context.Context, conn *quic.Conn, ln *laneLink, op *outbox.Op, pl io.ReaderAt, b *base, p linkmon.SyncParameters, eager bool, paused func() bool) (sendResult, error) {
	res := sendResult{params: p}
	h, err := s.payloadHash(op, pl)
	if err != nil {
		return res, err
	}
	res.hash = h
	mode := codecMode(p, b != nil && op.Kind == edgesync.StateOp)
	var cb *codec.Base
	if mode.IsDelta() {
		cb = &codec.Base{R: b, Size: b.Size, Hash: codec.Hash(b.Hash)}
		res.base = b
	}
	chunk := max(codec.MinChunkSize, min(p.ChunkSize, codec.MaxChunkSize))
	ch, err := codec.NewHeader(mode, codecLevel(p), chunk, op.Size, h, cb)
	if err != nil {
		return res, err
	}
	res.mode = mode

	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return res, err
	}
	defer str.CancelRead(0)
	str.SetPriority(int8(op.Priority), false)
	stopWatch := context.AfterFunc(ctx, func() { str.CancelWrite(0); str.CancelRead(0) })
	defer stopWatch()
	start := time.Now()

	hdr := &wire.OpHeader{
		ID: op.ID, Key: op.Key, Endpoint: op.Endpoint, Priority: op.Priority,
		Kind: op.Kind, Mode: uint8(mode), PlainSize: uint64(op.Size),
		ChunkSize: uint32(chunk), PayloadHash: h, Expires: op.ExpiresAt,
		Summarized: op.SummarySent,
	}
	if mode.IsDelta() {
		hdr.HasBase, hdr.BaseHash = true, b.Hash
	}
	// A one-chunk op goes out whole at once: waiting for the core's answer
	// would cost a round trip per small op. The core skips what it holds.
	pipelined := op.Size <= int64(chunk)
	useLane := ln != nil && !pipelined
	if useLane {
		hdr.Lane, hdr.LaneTransfer = true, ln.nextTransfer()
		hdr.Eager = eager
		res.lane = true
	}
	if err := wire.WriteFrame(str, hdr); err != nil {
		return res, err
	}
	from := int64(0)
	if !pipelined && !hdr.Eager {
		f, err := wire.ReadFrame(str, wire.MaxFrameSize)
		if err != nil {
			return res, err
		}
		done, held, err := s.answer(f, &res)
		if done || err != nil {
			res.took = time.Since(start)
			return res, err
		}
		from = held / int64(chunk)
	}
	if useLane {
		err := s.laneOp(ctx, str, ln, hdr, &ch, op, from, pl, cb, &res, paused)
		res.took = time.Since(start)
		return res, err
	}
	for i := from; i < ch.Chunks(); i++ {
		if i > from && paused != nil && paused() {
			str.CancelWrite(0)
			return res, errPaused
		}
		if err := s.sendChunk(str, &ch, op, i, pl, cb, &res); err != nil {
			return res, err
		}
	}
	if err := commit(str, op, &ch); err != nil {
		return res, err
	}
	for {
		f, err := wire.ReadFrame(str, wire.MaxFrameSize)
		if err != nil {
			return res, err
		}
		done, _, err := s.answer(f, &res)
		if done || err != nil {
			res.took = time.Since(start)
			return res, err
		}
		// A RESUME_ANSWER to a pipelined op: the ACK follows.
	}
}

// commit ends the op on its stream: every chunk is sent (or, on the lane,
// handed to it).
func commit(str *quic.Stream, op *outbox.Op, ch *codec.Header) error {
	if err := wire.WriteFrame(str, &wire.Commit{ID: op.ID, Chunks: uint64(ch.Chunks())}); err != nil {
		return err
	}
	return str.Close()
}

// answer interprets the core's reply. done is true on ACK or NACK; held is
// set on RESUME_ANSWER.
func (s *opSender) answer(f wire.Frame, res *sendResult) (done bool, held int64, err error) {
	switch f := f.(type) {
	case *wire.Ack:
		res.acked = true
		return true, 0, nil
	case *wire.Nack:
		res.nack = f
		return true, 0, nil
	case *wire.ResumeAnswer:
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

func (s *opSender) sendChunk(w io.Writer, ch *codec.Header, op *outbox.Op, i int64, pl io.ReaderAt, cb *codec.Base, res *sendResult) error {
	frame, err := s.dataFrame(s.frame[:0], ch, op, i, pl, cb, res)
	if err != nil {
		return err
	}
	s.frame = frame
	_, err = w.Write(frame)
	return err
}

// dataFrame reads and encodes chunk i and appends its DATA frame to dst.
func (s *opSender) dataFrame(dst []byte, ch *codec.Header, op *outbox.Op, i int64, pl io.ReaderAt, cb *codec.Base, res *sendResult) ([]byte, error) {
	off, n, _ := ch.ChunkRange(i)
	if cap(s.plain) < n {
		s.plain = make([]byte, n)
	}
	plain := s.plain[:n]
	if k, err := pl.ReadAt(plain, off); k < n {
		return dst, fmt.Errorf("read payload of %s at %d: %w", op.ID, off, err)
	}
	enc, err := s.enc.EncodeChunk(s.encoded[:0], ch, i, plain, cb)
	if err != nil {
		return dst, fmt.Errorf("encode chunk %d of %s: %w", i, op.ID, err)
	}
	s.encoded = enc
	d := &wire.Data{ID: op.ID, Offset: uint64(off), Chunk: enc}
	out, err := d.Append(dst)
	if err != nil {
		return dst, err
	}
	res.plainBytes += int64(n)
	res.wireBytes += int64(len(enc))
	return out, nil
}
