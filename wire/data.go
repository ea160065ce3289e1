package wire

import (
	edgesync "github.com/edge-sync/edge-sync"
	"github.com/quic-go/quic-go/quicvarint"
)

// Data carries one chunk of an op's encoded byte stream. The chunk runs to
// the end of the frame body, so it has no length field of its own.
type Data struct {
	ID     edgesync.OpID
	Offset uint64 // plain offset of the chunk's first byte, a multiple of OpHeader.ChunkSize
	// Mode is the codec.Mode of this chunk if it differs from the
	// OpHeader's (e.g. a chunk the encoder stored raw); 0 means "as the
	// header says".
	Mode  uint8
	Chunk []byte // at most MaxChunkSize bytes; aliases the input after Parse
}

// Type returns FrameData.
func (f *Data) Type() FrameType { return FrameData }

func (f *Data) bodyLen() int { return 16 + varintLen(f.Offset) + 1 + len(f.Chunk) }

// Len returns the number of bytes Append adds.
func (f *Data) Len() int { return frameLen(FrameData, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *Data) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameData}
	c.varint("offset", f.Offset)
	c.length("chunk", len(f.Chunk), MaxChunkSize)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = append(b, f.ID[:]...)
	b = quicvarint.Append(b, f.Offset)
	b = append(b, f.Mode)
	return append(b, f.Chunk...), nil
}

func parseData(r *bodyReader) (Frame, error) {
	f := &Data{}
	r.fixed("op id", f.ID[:])
	f.Offset = r.varint("offset")
	f.Mode = r.u8("mode")
	f.Chunk = r.rest()
	if r.err == nil && len(f.Chunk) > MaxChunkSize {
		r.fail(ErrFieldTooLong, "chunk", "%d bytes, limit %d", len(f.Chunk), MaxChunkSize)
	}
	return f, r.err
}
