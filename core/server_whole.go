package core

import (
	"errors"
	"fmt"

	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/wire"
)

// whole receives an op of one chunk, which the agent sends at once
// (OP_HEADER, DATA, COMMIT) without waiting for an answer, and applies it
// in one write of the store (WholeApplier) instead of three (begin, write,
// commit; docs/core.md, "Group commit"). Nothing is stored before the
// COMMIT: a stream that ends before it leaves nothing behind, and the
// agent sends the op again whole, as it always does an op of one chunk.
// The answer is ACK or NACK alone: the agent reads a RESUME_ANSWER to
// such an op only to wait for what follows.
func (h *opHandler) whole(wa WholeApplier, hdr *wire.OpHeader, ph PartialHeader, ch *codec.Header, base *codec.Base) error {
	var data []byte
	held := int64(0)
	for {
		f, err := h.readFrame(wire.FrameData, wire.FrameCommit)
		if errors.Is(err, wire.ErrUnexpectedFrame) || errors.Is(err, wire.ErrBusy) {
			return h.nack(hdr, err)
		}
		if err != nil {
			return err
		}
		switch f := f.(type) {
		case *wire.Data:
			if f.ID != hdr.ID {
				return h.nack(hdr, fmt.Errorf("%w: DATA for op %s on the stream of %s", wire.ErrBadRequest, f.ID, hdr.ID))
			}
			fresh, err := h.decode(ch, base, f, held)
			if err != nil {
				return h.nack(hdr, err)
			}
			if len(fresh) > 0 {
				// One chunk: the first DATA holds all of it, and data is
				// that chunk in h.buf, which no later DATA overwrites (it
				// is held, so not decoded).
				data = fresh
				held += int64(len(fresh))
			}
		case *wire.Commit:
			h.pipelined, h.committing = false, true // the agent sends nothing after COMMIT but its end
			if f.ID != hdr.ID {
				return h.nack(hdr, fmt.Errorf("%w: COMMIT for op %s on the stream of %s", wire.ErrBadRequest, f.ID, hdr.ID))
			}
			if held != ph.Size {
				return h.nack(hdr, fmt.Errorf("%w: COMMIT after %d of %d bytes", ErrIncomplete, held, ph.Size))
			}
			res, err := wa.ApplyWhole(h.agent, ph, data)
			if err != nil {
				return h.nack(hdr, err)
			}
			h.applied(hdr, res)
			return h.ack(hdr)
		}
	}
}
