package wire

import (
	edgesync "github.com/edge-sync/edge-sync"
	"github.com/quic-go/quic-go/quicvarint"
)

// Commit ends an op's transfer: the sender has sent the whole encoded
// stream. The core verifies, stores, fsyncs, and answers Ack or Nack.
type Commit struct {
	ID     edgesync.OpID
	Chunks uint64   // Data frames in the whole stream (from offset 0)
	Bytes  uint64   // length of the whole encoded stream
	Hash   [32]byte // SHA-256 of the whole encoded stream
}

// Type returns FrameCommit.
func (f *Commit) Type() FrameType { return FrameCommit }

func (f *Commit) bodyLen() int { return 16 + varintLen(f.Chunks) + varintLen(f.Bytes) + 32 }

// Len returns the number of bytes Append adds.
func (f *Commit) Len() int { return frameLen(FrameCommit, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *Commit) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameCommit}
	c.varint("chunks", f.Chunks)
	c.varint("bytes", f.Bytes)
	if c.err != nil {
		return b, c.err
	}
	b, err := appendHeader(b, FrameCommit, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = append(b, f.ID[:]...)
	b = quicvarint.Append(b, f.Chunks)
	b = quicvarint.Append(b, f.Bytes)
	return append(b, f.Hash[:]...), nil
}

func parseCommit(r *bodyReader) (Frame, error) {
	f := &Commit{}
	r.fixed("op id", f.ID[:])
	f.Chunks = r.varint("chunks")
	f.Bytes = r.varint("bytes")
	r.fixed("hash", f.Hash[:])
	return f, r.err
}
