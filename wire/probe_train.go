package wire

import (
	"fmt"
	"time"

	"github.com/quic-go/quic-go/quicvarint"
)

// MaxTrainCount is the most packets one probe train may have.
const MaxTrainCount = 4096

// ProbeTrain is one packet of a packet train sent back to back, from which
// the receiver estimates the bottleneck capacity as (N-1)*S/Δ. Padding
// makes every packet of a train the same size.
type ProbeTrain struct {
	TrainID uint64
	Index   uint32        // 0..Count-1
	Count   uint32        // packets in the train, 1..MaxTrainCount
	Sent    time.Duration // sender's clock when sent
	Pad     int           // zero bytes of padding
}

// Type returns FrameProbeTrain.
func (f *ProbeTrain) Type() FrameType { return FrameProbeTrain }

func (f *ProbeTrain) bodyLen() int {
	return varintLen(f.TrainID) + varintLen(uint64(f.Index)) + varintLen(uint64(f.Count)) +
		varintLen(uint64(f.Sent)) + bytesLen(max(f.Pad, 0))
}

// Len returns the number of bytes Append adds.
func (f *ProbeTrain) Len() int { return frameLen(FrameProbeTrain, f.bodyLen()) }

// PadTo sets Pad to the largest value for which Len() <= size. It fails if
// even no padding is longer than size, or size exceeds MaxProbeFrameSize.
func (f *ProbeTrain) PadTo(size int) error {
	f.Pad = 0
	if min := f.Len(); size < min || size > MaxProbeFrameSize {
		return fmt.Errorf("pad probe train to %d bytes: want %d..%d: %w", size, min, MaxProbeFrameSize, ErrInvalidField)
	}
	// Each varint that grows with Pad adds at most a few bytes, so start
	// at the naive value and step down.
	for p := size - f.Len(); p >= 0; p-- {
		f.Pad = p
		if f.Len() <= size {
			return nil
		}
	}
	f.Pad = 0
	return nil
}

// Append appends the encoded frame to b.
func (f *ProbeTrain) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameProbeTrain}
	c.varint("train id", f.TrainID)
	c.valid("count", f.Count > 0 && f.Count <= MaxTrainCount, f.Count)
	c.valid("index", f.Index < f.Count, f.Index)
	c.valid("sent", durationOK(f.Sent), f.Sent)
	c.valid("padding", f.Pad >= 0, f.Pad)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = quicvarint.Append(b, f.TrainID)
	b = quicvarint.Append(b, uint64(f.Index))
	b = quicvarint.Append(b, uint64(f.Count))
	b = quicvarint.Append(b, uint64(f.Sent))
	b = quicvarint.Append(b, uint64(f.Pad))
	return append(b, make([]byte, f.Pad)...), nil
}

func parseProbeTrain(r *bodyReader) (Frame, error) {
	f := &ProbeTrain{}
	f.TrainID = r.varint("train id")
	f.Index = uint32(r.uintN("index", 32))
	f.Count = uint32(r.uintN("count", 32))
	if r.err == nil && (f.Count == 0 || f.Count > MaxTrainCount || f.Index >= f.Count) {
		r.fail(ErrInvalidField, "index", "packet %d of %d, want count 1..%d", f.Index, f.Count, MaxTrainCount)
	}
	f.Sent = time.Duration(r.varint("sent"))
	f.Pad = len(r.bytes("padding", MaxProbeFrameSize))
	return f, r.err
}
