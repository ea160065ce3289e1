package wire

import (
	"time"

	"github.com/quic-go/quic-go/quicvarint"
)

// Ping asks the peer for a Pong, to measure RTT and loss. It travels as a
// QUIC datagram or a sealed raw packet; timestamps are on the sender's own
// monotonic clock (time since an epoch it chose), never compared across
// hosts.
type Ping struct {
	Seq  uint64
	Sent time.Duration // sender's clock when sent
}

// Type returns FramePing.
func (f *Ping) Type() FrameType { return FramePing }

func (f *Ping) bodyLen() int { return varintLen(f.Seq) + varintLen(uint64(f.Sent)) }

// Len returns the number of bytes Append adds.
func (f *Ping) Len() int { return frameLen(FramePing, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *Ping) Append(b []byte) ([]byte, error) {
	c := checker{t: FramePing}
	c.varint("seq", f.Seq)
	c.valid("sent", durationOK(f.Sent), f.Sent)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = quicvarint.Append(b, f.Seq)
	return quicvarint.Append(b, uint64(f.Sent)), nil
}

func parsePing(r *bodyReader) (Frame, error) {
	f := &Ping{}
	f.Seq = r.varint("seq")
	f.Sent = time.Duration(r.varint("sent"))
	return f, r.err
}
