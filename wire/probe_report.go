package wire

import (
	"time"

	"github.com/quic-go/quic-go/quicvarint"
)

// ProbeReport is the receiver's account of one probe train, sent back to
// the train's sender. Arrival times are on the receiver's clock; only their
// difference (the dispersion) means anything to the sender.
type ProbeReport struct {
	TrainID  uint64
	Count    uint32        // packets the train had
	Received uint32        // packets that arrived, <= Count
	Bytes    uint64        // frame bytes of the packets that arrived
	First    time.Duration // arrival of the first packet that arrived
	Last     time.Duration // arrival of the last packet that arrived, >= First
}

// Dispersion returns the time between the first and last arrival.
func (f *ProbeReport) Dispersion() time.Duration { return f.Last - f.First }

// Capacity estimates the bottleneck rate in bit/s as (N-1)*S/Δ, taking S as
// the mean packet size; it returns 0 when fewer than two packets arrived or
// the dispersion is zero.
func (f *ProbeReport) Capacity() float64 {
	d := f.Dispersion()
	if f.Received < 2 || d <= 0 {
		return 0
	}
	size := float64(f.Bytes) / float64(f.Received)
	return float64(f.Received-1) * size * 8 / d.Seconds()
}

// Type returns FrameProbeReport.
func (f *ProbeReport) Type() FrameType { return FrameProbeReport }

func (f *ProbeReport) bodyLen() int {
	return varintLen(f.TrainID) + varintLen(uint64(f.Count)) + varintLen(uint64(f.Received)) +
		varintLen(f.Bytes) + varintLen(uint64(f.First)) + varintLen(uint64(f.Last))
}

// Len returns the number of bytes Append adds.
func (f *ProbeReport) Len() int { return frameLen(FrameProbeReport, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *ProbeReport) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameProbeReport}
	c.varint("train id", f.TrainID)
	c.valid("count", f.Count <= MaxTrainCount, f.Count)
	c.valid("received", f.Received <= f.Count, f.Received)
	c.varint("bytes", f.Bytes)
	c.valid("first", durationOK(f.First), f.First)
	c.valid("last", durationOK(f.Last) && f.Last >= f.First, f.Last)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = quicvarint.Append(b, f.TrainID)
	b = quicvarint.Append(b, uint64(f.Count))
	b = quicvarint.Append(b, uint64(f.Received))
	b = quicvarint.Append(b, f.Bytes)
	b = quicvarint.Append(b, uint64(f.First))
	return quicvarint.Append(b, uint64(f.Last)), nil
}

func parseProbeReport(r *bodyReader) (Frame, error) {
	f := &ProbeReport{}
	f.TrainID = r.varint("train id")
	f.Count = uint32(r.uintN("count", 32))
	f.Received = uint32(r.uintN("received", 32))
	if r.err == nil && (f.Count > MaxTrainCount || f.Received > f.Count) {
		r.fail(ErrInvalidField, "received", "%d of %d packets, want count <= %d", f.Received, f.Count, MaxTrainCount)
	}
	f.Bytes = r.varint("bytes")
	f.First = time.Duration(r.varint("first"))
	f.Last = time.Duration(r.varint("last"))
	if r.err == nil && f.Last < f.First {
		r.fail(ErrInvalidField, "last", "arrival %v before the first %v", f.Last, f.First)
	}
	return f, r.err
}
