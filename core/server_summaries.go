package core

import (
	"errors"
	"fmt"
	"io"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/wire"
)

// Several summaries per stream (docs/wire.md, "Several summaries per
// stream"): on a connection that granted CapSummariesPerStream, a stream
// whose first frame is a SUMMARY may carry up to wire.MaxOpsPerStream
// SUMMARY frames back to back, then the stream's end. The core stores
// each as it reads it, as a stream of one summary does, and answers each
// with its ACK or NACK, in order, in one write followed by the stream's
// end. A refused summary (store full, its producer bytes over the frame
// memory) is NACKed and the stream goes on. A 65th summary or an op ID
// twice is NACKed bad-request and nothing after it is read; any other
// frame, or a broken stream, ends it with an ERROR after the answers of
// the summaries read. What is not answered the agent sends again: a
// summary stored twice is its key's latest summary still.

// summaryCost is what a summary read on a stream of several holds of the
// connection's frame memory until the stream ends: its answer and its
// entry among the stream's IDs, rounded up. Its frame's body is the
// Reader's, reserved as it grows and reused for the next.
const summaryCost = 256

// summaries reads, stores and answers the summaries of a stream whose
// first frame is first.
func (h *opHandler) summaries(first *wire.Summary) error {
	// The agent writes the whole stream at once: a stream ended early
	// lets it finish that write (finish reads the rest, up to its bound).
	h.pipelined = true
	var b []byte // the answers
	var err error
	seen := map[edgesync.OpID]bool{}
	var stop error // what ended the stream, if not its end
	for sum, n := first, 1; ; n++ {
		var f wire.Frame
		broke := true // the rules: nothing after it is read
		switch {
		case n > wire.MaxOpsPerStream:
			f = h.badSummary(sum, "summary of op %s is summary %d of its stream, which may carry at most %d", sum.ID, n, wire.MaxOpsPerStream)
		case seen[sum.ID]:
			f = h.badSummary(sum, "a second summary of op %s on one stream", sum.ID)
		default:
			if stop = h.reservePacked(summaryCost); stop != nil {
				break
			}
			seen[sum.ID] = true
			f, broke = h.storeSummary(sum), false
		}
		if stop != nil {
			break
		}
		if b, err = f.Append(b); err != nil {
			return err
		}
		if broke {
			break
		}
		h.in.deadline.next()
		next, err := h.fr.ReadFrameOf(wire.FrameSummary)
		if errors.Is(err, io.EOF) {
			h.pipelined = false // read to its end
			break
		}
		if err != nil {
			stop = err
			break
		}
		sum = next.(*wire.Summary)
	}
	if stop != nil && peerEnded(stop) {
		h.fail(stop) // counts the reset; nothing more to answer
		return nil
	}
	if stop != nil {
		h.log.Debug("summary stream refused", "code", wire.CodeOf(toWire(stop)).String(), "error", stop)
		if b, err = wire.ErrorFrameFor(toWire(stop)).Append(b); err != nil {
			return err
		}
	}
	if _, err := h.str.Write(b); err != nil {
		h.log.Debug("answers not sent", "error", err)
		return nil // the agent sends the summaries again; each is its key's latest
	}
	if err := h.str.Close(); err != nil {
		h.log.Debug("op stream not closed", "error", err)
	}
	return nil
}

// badSummary is the NACK bad-request of sum, which broke the rules of a
// stream of several summaries.
func (h *opHandler) badSummary(sum *wire.Summary, format string, args ...any) wire.Frame {
	err := fmt.Errorf("%w: "+format+" (docs/wire.md, \"Several summaries per stream\")", append([]any{wire.ErrBadRequest}, args...)...)
	h.log.Info("summary refused", "op", sum.ID.String(), "key", sum.Key, "error", err)
	return wire.NackFor(sum.ID, err)
}
