package wire

import (
	edgesync "github.com/edge-sync/edge-sync"
	"github.com/quic-go/quic-go/quicvarint"
)

// Ack tells the agent that the core has stored these ops durably (after its
// own fsync); the agent may delete them from its outbox.
type Ack struct {
	IDs []edgesync.OpID // 1..MaxAckIDs
}

// Type returns FrameAck.
func (f *Ack) Type() FrameType { return FrameAck }

func (f *Ack) bodyLen() int { return varintLen(uint64(len(f.IDs))) + 16*len(f.IDs) }

// Len returns the number of bytes Append adds.
func (f *Ack) Len() int { return frameLen(FrameAck, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *Ack) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameAck}
	c.valid("ids", len(f.IDs) > 0, "none")
	c.length("ids", len(f.IDs), MaxAckIDs)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = quicvarint.Append(b, uint64(len(f.IDs)))
	for _, id := range f.IDs {
		b = append(b, id[:]...)
	}
	return b, nil
}

func parseAck(r *bodyReader) (Frame, error) {
	f := &Ack{}
	n := r.count("ids", MaxAckIDs)
	if r.err == nil && uint64(len(r.b)) < 16*n {
		r.short("ids")
	}
	if r.err != nil {
		return f, r.err
	}
	f.IDs = make([]edgesync.OpID, n)
	for i := range f.IDs {
		r.fixed("op id", f.IDs[i][:])
	}
	return f, r.err
}
