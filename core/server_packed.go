package core

import (
	"errors"
	"fmt"
	"io"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/wire"
)

// Several ops per stream (docs/wire.md, "Several ops per stream"): on a
// connection that granted CapOpsPerStream, a stream whose first op is
// whole (one chunk, no lane) may carry up to wire.MaxOpsPerStream such
// ops back to back, each OP_HEADER, at most one DATA of at most
// wire.MaxPackedOpData encoded bytes, COMMIT, then the stream's end. The
// core reads them all (the agent writes them in one write, so they come
// together), applies them together (WholeOpsApplier: one group commit on
// bbolt, publishes that do not wait for each other on JetStream) and
// answers each with its ACK or NACK, in the ops' order, in one write
// followed by the stream's end. A stream of one op is that stream's
// special case: its answer is the same as without the capability.
//
// A refused op (expired, over quota, a bad hash) is NACKed and the
// stream goes on. A break of the stream's rules (a 65th op, a second or
// larger DATA, a lane op, a repeated op ID, a frame out of order) NACKs
// the op it concerns as bad-request, or ends the stream with an ERROR
// where no op is concerned; either way nothing after it is read. The
// ops read whole before it, or before the stream broke, are applied and
// answered: what is not answered the agent sends again, and the applied-op
// index keeps each exactly once. Nothing is stored before an op's COMMIT.

// packedOp is one op of a stream of several, read whole.
type packedOp struct {
	hdr  *wire.OpHeader
	ph   PartialHeader
	data []byte // its plain bytes, reserved in the connection's frame memory
	big  int    // its DATA's encoded bytes, if over wire.MaxPackedOpData: it must be alone
	// err refuses the op: its answer is a NACK. Set before the store sees
	// the op, or by the store.
	err     error
	res     Result
	applied bool // the store answered it (res or err)
}

// packedOps reads the ops of a stream whose first op, first, is whole,
// applies them and answers.
func (h *opHandler) packedOps(first *wire.OpHeader) error {
	// The agent writes the whole stream at once: a stream ended early
	// lets it finish that write (finish reads the rest, up to its bound).
	h.pipelined = true
	ops := make([]*packedOp, 0, 16)
	var stop error // what ended the stream between ops, if not its end
	hdr := first
	for {
		op, broke := h.readPacked(hdr, ops)
		ops = append(ops, op)
		if broke {
			break
		}
		h.in.deadline.next()
		f, err := h.fr.ReadFrameOf(wire.FrameOpHeader)
		if errors.Is(err, io.EOF) {
			h.pipelined, h.committing = false, false // read to its end
			break
		}
		if err != nil {
			stop = err
			break
		}
		if ops[0].big > 0 {
			// The first op's DATA was larger than an op that shares its
			// stream may be: it was meant to be alone.
			ops[0].err = fmt.Errorf("%w: op %s has %d encoded bytes of DATA on a stream of several ops, where each may have at most %d (docs/wire.md)",
				wire.ErrBadRequest, ops[0].hdr.ID, ops[0].big, wire.MaxPackedOpData)
			break
		}
		hdr = f.(*wire.OpHeader)
	}
	h.applyPacked(ops)
	return h.answerPacked(ops, stop)
}

// readPacked reads op hdr's frames up to its COMMIT; ops are the stream's
// ops before it. broke reports a break of the stream's rules, which the
// op's err names: nothing more is read.
func (h *opHandler) readPacked(hdr *wire.OpHeader, ops []*packedOp) (op *packedOp, broke bool) {
	op = &packedOp{hdr: hdr}
	badRequest := func(format string, args ...any) (*packedOp, bool) {
		op.err = fmt.Errorf("%w: "+format+" (docs/wire.md, \"Several ops per stream\")", append([]any{wire.ErrBadRequest}, args...)...)
		return op, true
	}
	switch {
	case len(ops) >= wire.MaxOpsPerStream:
		return badRequest("op %s is op %d of its stream, which may carry at most %d", hdr.ID, len(ops)+1, wire.MaxOpsPerStream)
	case hdr.Lane:
		return badRequest("lane op %s on a stream of several ops", hdr.ID)
	case hdr.PlainSize > uint64(hdr.ChunkSize):
		return badRequest("op %s of more than one chunk on a stream of several ops", hdr.ID)
	case hasOp(ops, hdr.ID):
		return badRequest("op %s twice on one stream", hdr.ID)
	case len(ops) > 0 && !h.packedBackfill && (hdr.Summarized || ops[0].hdr.Summarized):
		// Only a connection that granted CapPackedBackfill takes the full
		// data of an op whose summary went first beside other ops.
		return badRequest("op %s on a stream of several ops where one is sent after its summary (OpHeader.Summarized), which this connection did not grant (wire.CapPackedBackfill)", hdr.ID)
	}
	// The op is held until the stream ends: its header counts against the
	// connection's frame memory before anything more of it is read. An
	// op that does not fit ends the stream, refused busy.
	if err := h.reservePacked(packedOpCost(hdr)); err != nil {
		op.err = fmt.Errorf("op %s: its header, held with the stream's other ops: %w", hdr.ID, err)
		return op, true
	}
	var ch *codec.Header
	var base *codec.Base
	if hdr.PlainSize > uint64(h.maxOpBytes) {
		op.err = h.tooLarge(hdr)
	} else {
		if codec.Mode(hdr.Mode).IsDelta() {
			// Its base may be an op before it on this stream.
			h.applyPacked(ops)
		}
		op.ph, ch, base, op.err = h.check(hdr)
	}
	held, data := int64(0), false
	for {
		f, err := h.readFrame(wire.FrameData, wire.FrameCommit)
		if err != nil {
			// A frame out of order, the stream's end or a reset, a silent
			// agent: the op was not committed.
			op.err = err
			return op, true
		}
		switch f := f.(type) {
		case *wire.Data:
			if f.ID != hdr.ID {
				return badRequest("DATA for op %s on the stream's op %s", f.ID, hdr.ID)
			}
			if data {
				return badRequest("a second DATA for op %s on a stream of several ops", hdr.ID)
			}
			data = true
			if len(f.Chunk) > wire.MaxPackedOpData {
				if len(ops) > 0 {
					return badRequest("op %s has %d encoded bytes of DATA on a stream of several ops, where each may have at most %d",
						hdr.ID, len(f.Chunk), wire.MaxPackedOpData)
				}
				op.big = len(f.Chunk)
			}
			if op.err == nil {
				held, op.err = h.keepPacked(op, ch, base, f)
			}
		case *wire.Commit:
			if f.ID != hdr.ID {
				return badRequest("COMMIT for op %s on the stream's op %s", f.ID, hdr.ID)
			}
			if op.err == nil && held != op.ph.Size {
				op.err = fmt.Errorf("%w: COMMIT after %d of %d bytes", ErrIncomplete, held, op.ph.Size)
			}
			return op, false
		}
	}
}

// ackLen is the length of an ACK frame of one op ID.
var ackLen = (&wire.Ack{IDs: make([]edgesync.OpID, 1)}).Len()

// hasOp reports whether id is among ops. At most wire.MaxOpsPerStream
// ops: a scan costs less than a map's allocations.
func hasOp(ops []*packedOp, id edgesync.OpID) bool {
	for _, op := range ops {
		if op.hdr.ID == id {
			return true
		}
	}
	return false
}

// packedOpOverhead is what an op read on a stream of several costs the
// core besides its key, endpoint and plain bytes, rounded up: its
// wire.OpHeader, its packedOp with the store's header and result, its
// entry among the stream's ops and the message of a refusal.
const packedOpOverhead = 1 << 10

// packedOpCost is what op hdr holds of the connection's frame memory
// until its stream ends, besides its plain bytes.
func packedOpCost(hdr *wire.OpHeader) int {
	return packedOpOverhead + len(hdr.Key) + len(hdr.Endpoint)
}

// reservePacked reserves n bytes of the connection's frame memory until
// finish.
func (h *opHandler) reservePacked(n int) error {
	if err := h.mem.Reserve(n); err != nil {
		return fmt.Errorf("%w; refused for now, the agent sends it again later (a core that refuses often needs a larger limit)", err)
	}
	h.packedMem += n
	return nil
}

// keepPacked decodes an op's one chunk and keeps its plain bytes until
// finish: they wait for the stream's other ops. The plain size the op's
// header announced, which its chunk may not exceed, is reserved in the
// connection's frame memory first, and the chunk decoded into what was
// reserved: a chunk that would decode to more fails (codec.ErrTooLarge)
// and nothing is decoded for an op that does not fit. It returns how
// many bytes it holds.
func (h *opHandler) keepPacked(op *packedOp, ch *codec.Header, base *codec.Base, d *wire.Data) (int64, error) {
	if op.big > 0 {
		// An op over wire.MaxPackedOpData is alone on its stream: no
		// later op's DATA is decoded into h.buf (reserved as it grows),
		// where its bytes are (the frames after it, if any, refuse it),
		// so it needs no copy, and no more memory than on a stream of one
		// op.
		plain, err := h.decode(ch, base, d, 0)
		if err != nil {
			return 0, err
		}
		op.data = plain
		return int64(len(plain)), nil
	}
	h.stats.bytesReceived.Add(int64(len(d.Chunk)))
	if d.Offset != 0 {
		return 0, fmt.Errorf("%w: DATA at offset %d of an op of one chunk", wire.ErrBadRequest, d.Offset)
	}
	size := int(op.ph.Size) // at most the chunk size and h.maxOpBytes (readPacked, check)
	if size > 0 {
		if err := h.reservePacked(size); err != nil {
			return 0, fmt.Errorf("op %s of %d plain bytes, held with the stream's other ops: %w", op.hdr.ID, size, err)
		}
	}
	plain, used, err := h.dec.DecodeChunk(make([]byte, 0, size), ch, 0, d.Chunk, base)
	switch {
	case err != nil:
		return 0, err
	case used != len(d.Chunk):
		return 0, fmt.Errorf("%w: DATA holds %d bytes after its chunk", wire.ErrCorrupt, len(d.Chunk)-used)
	}
	op.data = plain
	return int64(len(plain)), nil
}

// applyPacked applies the ops not refused and not applied yet, together.
func (h *opHandler) applyPacked(ops []*packedOp) {
	todo := make([]*packedOp, 0, len(ops))
	whole := make([]WholeOp, 0, len(ops))
	for _, op := range ops {
		if op.err == nil && !op.applied {
			todo = append(todo, op)
			whole = append(whole, WholeOp{Header: op.ph, Data: op.data})
		}
	}
	if len(todo) == 0 {
		return
	}
	results := applyWholeOps(h.store, h.agent, whole)
	for i, op := range todo {
		op.res, op.err, op.applied = results[i].Result, results[i].Err, true
	}
}

// applyWholeOps applies ops with b's WholeOpsApplier, or one after
// another on a store without it.
func applyWholeOps(b Backend, agent string, ops []WholeOp) []WholeResult {
	if wa, ok := b.(WholeOpsApplier); ok {
		return wa.ApplyWholeOps(agent, ops)
	}
	out := make([]WholeResult, len(ops))
	for i, op := range ops {
		out[i].Result, out[i].Err = applyWholeOp(b, agent, op)
	}
	return out
}

// applyWholeOp applies one whole op: in one write on a WholeApplier,
// else as a partial op begun, written and committed at once (a failure
// leaves the partial for the store's sweep).
func applyWholeOp(b Backend, agent string, op WholeOp) (Result, error) {
	if wa, ok := b.(WholeApplier); ok {
		return wa.ApplyWhole(agent, op.Header, op.Data)
	}
	held, dup, err := b.BeginPartial(agent, op.Header)
	if err != nil {
		return Result{}, err
	}
	if dup {
		return Result{OpID: op.Header.OpID, Kind: op.Header.Kind, Key: op.Header.Key, Size: op.Header.Size, Duplicate: true}, nil
	}
	if held < int64(len(op.Data)) {
		if err := b.WritePartial(agent, op.Header.OpID, held, op.Data[held:]); err != nil {
			return Result{}, err
		}
	}
	return b.CommitPartial(agent, op.Header.OpID)
}

// answerPacked answers each op in order, ACK or NACK, and an ERROR for
// stop when the stream broke between ops, in one write, then closes the
// send side: the answers and the stream's end leave in as few packets as
// their size allows.
func (h *opHandler) answerPacked(ops []*packedOp, stop error) error {
	b := make([]byte, 0, len(ops)*ackLen)
	var err error
	// One ACK per op, each of one ID (the agent matches answers to ops
	// in order), made in place: no frame allocated per op.
	var id [1]edgesync.OpID
	ack := wire.Ack{IDs: id[:]}
	var n appliedTally
	for _, op := range ops {
		if op.err != nil {
			if peerEnded(op.err) {
				h.fail(op.err) // counts the reset; nothing more to answer
				break
			}
			b, err = h.nackFrame(op.hdr, op.err).Append(b)
		} else {
			n.add(h, op.hdr, op.res)
			id[0] = op.hdr.ID
			b, err = ack.Append(b)
		}
		if err != nil {
			return err
		}
	}
	n.count(h)
	if stop != nil && !peerEnded(stop) {
		h.log.Debug("op stream refused between ops", "code", wire.CodeOf(toWire(stop)).String(), "error", stop)
		if b, err = wire.ErrorFrameFor(toWire(stop)).Append(b); err != nil {
			return err
		}
	} else if stop != nil {
		h.fail(stop)
	}
	if len(b) > 0 {
		if _, err := h.str.Write(b); err != nil {
			h.log.Debug("answers not sent", "error", err)
			return nil // the agent sends the ops again; the index keeps them once
		}
	}
	if err := h.str.Close(); err != nil {
		h.log.Debug("op stream not closed", "error", err)
	}
	return nil
}
