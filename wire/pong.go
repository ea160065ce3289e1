package wire

import (
	"time"

	"github.com/quic-go/quic-go/quicvarint"
)

// Pong answers a Ping. Echo is the Ping's Sent, so the pinger computes the
// RTT on its own clock as now - Echo - (responder's hold time, which is
// Sent minus the responder's receive time and is left out when unknown).
type Pong struct {
	Seq  uint64        // the Ping's Seq
	Echo time.Duration // the Ping's Sent, unchanged
	Sent time.Duration // responder's clock when sent
}

// Type returns FramePong.
func (f *Pong) Type() FrameType { return FramePong }

func (f *Pong) bodyLen() int {
	return varintLen(f.Seq) + varintLen(uint64(f.Echo)) + varintLen(uint64(f.Sent))
}

// Len returns the number of bytes Append adds.
func (f *Pong) Len() int { return frameLen(FramePong, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *Pong) Append(b []byte) ([]byte, error) {
	c := checker{t: FramePong}
	c.varint("seq", f.Seq)
	c.valid("echo", durationOK(f.Echo), f.Echo)
	c.valid("sent", durationOK(f.Sent), f.Sent)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = quicvarint.Append(b, f.Seq)
	b = quicvarint.Append(b, uint64(f.Echo))
	return quicvarint.Append(b, uint64(f.Sent)), nil
}

func parsePong(r *bodyReader) (Frame, error) {
	f := &Pong{}
	f.Seq = r.varint("seq")
	f.Echo = time.Duration(r.varint("echo"))
	f.Sent = time.Duration(r.varint("sent"))
	return f, r.err
}
