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
	b, err := hdr.Append(s.frame[:0])
	if err != nil {
		return fmt.Errorf("write %s frame: %w", hdr.Type(), err)
	}
	chunks := t.ch.Chunks() // one, or none for an empty op
	for i := range chunks {
		if b, err = s.dataFrame(b, t, i); err != nil {
			return err
		}
	}
	c := &wire.Commit{ID: t.op.ID, Chunks: uint64(chunks)}
	if b, err = c.Append(b); err != nil {
		return fmt.Errorf("write %s frame: %w", c.Type(), err)
	}
	s.frame = b
	if _, err := str.Write(b); err != nil {
		return fmt.Errorf("write op %s: %w", t.op.ID, err)
	}
	for i := range chunks {
		t.prog.doneChunk(&t.ch, i)
	}
	if err := str.Close(); err != nil {
		return err
	}
	return awaitAnswer(str, t)
}
