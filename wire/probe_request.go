package wire

import (
	"time"

	"github.com/quic-go/quic-go/quicvarint"
)

// ProbeRequest asks the peer to send a probe train towards the requester
// (the agent uses it to measure the downstream direction); the requester
// answers the train with nothing and computes the ProbeReport itself.
type ProbeRequest struct {
	TrainID uint64
	Count   uint32        // packets, 2..MaxTrainCount
	Size    uint32        // frame bytes per packet, at most MaxProbeFrameSize
	Gap     time.Duration // pause between packets; 0 for back to back
	Raw     bool          // send as sealed raw UDP packets instead of QUIC datagrams
}

// Type returns FrameProbeRequest.
func (f *ProbeRequest) Type() FrameType { return FrameProbeRequest }

func (f *ProbeRequest) bodyLen() int {
	return varintLen(f.TrainID) + varintLen(uint64(f.Count)) + varintLen(uint64(f.Size)) +
		varintLen(uint64(f.Gap)) + 1
}

// Len returns the number of bytes Append adds.
func (f *ProbeRequest) Len() int { return frameLen(FrameProbeRequest, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *ProbeRequest) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameProbeRequest}
	c.varint("train id", f.TrainID)
	c.valid("count", f.Count >= 2 && f.Count <= MaxTrainCount, f.Count)
	c.valid("size", f.Size <= MaxProbeFrameSize, f.Size)
	c.valid("gap", durationOK(f.Gap), f.Gap)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = quicvarint.Append(b, f.TrainID)
	b = quicvarint.Append(b, uint64(f.Count))
	b = quicvarint.Append(b, uint64(f.Size))
	b = quicvarint.Append(b, uint64(f.Gap))
	return appendFlag(b, f.Raw), nil
}

func parseProbeRequest(r *bodyReader) (Frame, error) {
	f := &ProbeRequest{}
	f.TrainID = r.varint("train id")
	f.Count = uint32(r.uintN("count", 32))
	if r.err == nil && (f.Count < 2 || f.Count > MaxTrainCount) {
		r.fail(ErrInvalidField, "count", "%d, want 2..%d", f.Count, MaxTrainCount)
	}
	f.Size = uint32(r.uintN("size", 32))
	if r.err == nil && f.Size > MaxProbeFrameSize {
		r.fail(ErrInvalidField, "size", "%d, limit %d", f.Size, MaxProbeFrameSize)
	}
	f.Gap = time.Duration(r.varint("gap"))
	f.Raw = r.flag("raw")
	return f, r.err
}
