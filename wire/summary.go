package wire

import (
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/quic-go/quic-go/quicvarint"
)

// Summary carries an op's metadata without its payload (the satellite
// class's "summary only" mode): the full payload stays queued and follows
// later in an OpHeader with Summarized set. A Summary goes on a stream of
// its own and the core answers Ack or Nack on that stream; that Ack means
// "summary stored", not "op stored": the agent keeps the op queued.
type Summary struct {
	ID   edgesync.OpID
	Key  string   // at most MaxKeyLen bytes
	Size uint64   // payload size in bytes
	Hash [32]byte // SHA-256 of the payload
	Time time.Time
	// Producer holds the producer's optional summary bytes, at most
	// MaxSummaryBytes; aliases the input after Parse.
	Producer []byte
}

// Type returns FrameSummary.
func (f *Summary) Type() FrameType { return FrameSummary }

func (f *Summary) bodyLen() int {
	t, _ := timeNanos(f.Time)
	return 16 + bytesLen(len(f.Key)) + varintLen(f.Size) + 32 + varintLen(t) + bytesLen(len(f.Producer))
}

// Len returns the number of bytes Append adds.
func (f *Summary) Len() int { return frameLen(FrameSummary, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *Summary) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameSummary}
	c.length("key", len(f.Key), MaxKeyLen)
	c.varint("size", f.Size)
	t, ok := timeNanos(f.Time)
	c.valid("time", ok, f.Time)
	c.length("producer summary", len(f.Producer), MaxSummaryBytes)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = append(b, f.ID[:]...)
	b = appendString(b, f.Key)
	b = quicvarint.Append(b, f.Size)
	b = append(b, f.Hash[:]...)
	b = quicvarint.Append(b, t)
	return appendBytes(b, f.Producer), nil
}

func parseSummary(r *bodyReader) (Frame, error) {
	f := &Summary{}
	r.fixed("op id", f.ID[:])
	f.Key = r.string("key", MaxKeyLen)
	f.Size = r.varint("size")
	r.fixed("hash", f.Hash[:])
	f.Time = timeFromNanos(r.varint("time"))
	if p := r.bytes("producer summary", MaxSummaryBytes); len(p) > 0 {
		f.Producer = p
	}
	return f, r.err
}
