package agent

import (
	"fmt"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/wire"
)

// sendWhole sends an op of one chunk whole in one write, OP_HEADER, DATA
// and COMMIT, closes the stream's send side and waits for the core's
// answer. Frames written one by one leave in packets of their own when
// quic-go's sender runs between the writes; in one write, with the FIN
// right after, the op is one packet (docs/core.md, "Packets per op").
func (s *opSender) sendWhole(str *quic.Stream, t *opTransfer, hdr *wire.OpHeader) error {
	b, err := s.appendWhole(s.frame[:0], t, hdr)
	s.frame = b
	if err != nil {
		return err
	}
	if _, err := str.Write(b); err != nil {
		return fmt.Errorf("write op %s: %w", t.op.ID, err)
	}
	t.wholeSent()
	t.written()
	if err := str.Close(); err != nil {
		return err
	}
	return awaitAnswer(str, t)
}

// appendWhole appends the frames of an op of one chunk, OP_HEADER, its
// DATA (none for an empty op) and COMMIT, to dst. Its errors are this
// agent's own (ownError).
func (s *opSender) appendWhole(dst []byte, t *opTransfer, hdr *wire.OpHeader) ([]byte, error) {
	b, err := hdr.Append(dst)
	if err != nil {
		return dst, own(fmt.Errorf("write %s frame: %w", hdr.Type(), err))
	}
	chunks := t.ch.Chunks() // one, or none for an empty op
	for i := range chunks {
		if b, err = s.dataFrame(b, t, i); err != nil {
			return dst, err
		}
	}
	c := &wire.Commit{ID: t.op.ID, Chunks: uint64(chunks)}
	if b, err = c.Append(b); err != nil {
		return dst, own(fmt.Errorf("write %s frame: %w", c.Type(), err))
	}
	return b, nil
}

// wholeSent records in the transfer's progress that its one chunk (if
// any) has left.
func (t *opTransfer) wholeSent() {
	for i := range t.ch.Chunks() {
		t.prog.doneChunk(&t.ch, i)
	}
}
