package wire

import (
	edgesync "github.com/edge-sync/edge-sync"
	"github.com/quic-go/quic-go/quicvarint"
)

// ResumeAnswer tells the agent how much of an op the core holds: the agent
// resends from the chunk that holds byte Held, or nothing if Complete.
type ResumeAnswer struct {
	ID     edgesync.OpID
	Held   uint64 // contiguous plain bytes held from offset 0
	Chunks uint64 // whole chunks those bytes make up
	// Complete says the core has already stored the op (it was committed
	// and acknowledged before); the agent treats it as acknowledged.
	Complete bool
}

// Type returns FrameResumeAnswer.
func (f *ResumeAnswer) Type() FrameType { return FrameResumeAnswer }

func (f *ResumeAnswer) bodyLen() int { return 16 + varintLen(f.Held) + varintLen(f.Chunks) + 1 }

// Len returns the number of bytes Append adds.
func (f *ResumeAnswer) Len() int { return frameLen(FrameResumeAnswer, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *ResumeAnswer) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameResumeAnswer}
	c.varint("held", f.Held)
	c.varint("chunks", f.Chunks)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = append(b, f.ID[:]...)
	b = quicvarint.Append(b, f.Held)
	b = quicvarint.Append(b, f.Chunks)
	return appendFlag(b, f.Complete), nil
}

func parseResumeAnswer(r *bodyReader) (Frame, error) {
	f := &ResumeAnswer{}
	r.fixed("op id", f.ID[:])
	f.Held = r.varint("held")
	f.Chunks = r.varint("chunks")
	f.Complete = r.flag("complete")
	return f, r.err
}
