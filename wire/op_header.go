package wire

import (
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/quic-go/quic-go/quicvarint"
)

// Flag bits of the OpHeader body; unknown bits are an error.
const (
	opFlagBase        = 1 << 0
	opFlagEncodedSize = 1 << 1
	opFlagSummarized  = 1 << 2
	opFlagLane        = 1 << 3
	opFlagEager       = 1 << 4
	opFlagsKnown      = opFlagBase | opFlagEncodedSize | opFlagSummarized | opFlagLane | opFlagEager
)

// OpHeader opens the transfer of one op: what it is, how its payload is
// encoded, and where in the encoded byte stream this transfer starts.
type OpHeader struct {
	ID       edgesync.OpID
	Key      string // names the object; at most MaxKeyLen bytes
	Endpoint string // target endpoint; at most MaxNameLen bytes
	Priority edgesync.Priority
	// Kind is carried as its edgesync.OpKind value (event 1, state 2).
	Kind edgesync.OpKind
	Mode uint8 // codec.Mode of the encoded payload
	// PlainSize is the decoded payload's size in bytes.
	PlainSize uint64
	// EncodedSize is the encoded stream's size, valid if HasEncodedSize (a
	// streaming encoder may not know it up front; Commit always carries it).
	EncodedSize    uint64
	HasEncodedSize bool
	// ChunkSize is the size of the encoder's independent chunks, 1..MaxChunkSize.
	ChunkSize uint32
	// PayloadHash is the SHA-256 of the decoded payload.
	PayloadHash [32]byte
	// BaseHash is the SHA-256 of the version a delta applies to, valid if
	// HasBase; it must be zero otherwise.
	BaseHash [32]byte
	HasBase  bool
	// Offset is the plain offset the agent means to start from; the core
	// answers with what it holds, which decides (informational).
	Offset uint64
	// Expires is when the op's TTL ends; the zero time means never.
	Expires time.Time
	// Summarized says a Summary of this op was sent before; the core
	// replaces it with the full payload.
	Summarized bool
	// Lane says the op's DATA frames travel on the data lane (package
	// wire/lane) rather than on this stream; only with CapLane granted.
	// COMMIT and the core's answers stay on the stream.
	Lane bool
	// LaneTransfer numbers this attempt among the connection's lane
	// transfers (valid if Lane): the agent never reuses one on a
	// connection, so lane data of an older attempt cannot mix with it.
	LaneTransfer uint64
	// Eager says the lane data follows at once, from Offset (a multiple
	// of ChunkSize), without waiting for RESUME_ANSWER: the core skips the
	// chunks it holds already. Only with Lane. It saves a round trip on an
	// op the agent has not tried to send before.
	Eager bool
}

// Type returns FrameOpHeader.
func (f *OpHeader) Type() FrameType { return FrameOpHeader }

func (f *OpHeader) flags() byte {
	var fl byte
	if f.HasBase {
		fl |= opFlagBase
	}
	if f.HasEncodedSize {
		fl |= opFlagEncodedSize
	}
	if f.Summarized {
		fl |= opFlagSummarized
	}
	if f.Lane {
		fl |= opFlagLane
	}
	if f.Eager {
		fl |= opFlagEager
	}
	return fl
}

func (f *OpHeader) bodyLen() int {
	exp, _ := timeNanos(f.Expires)
	n := 16 + 4 + bytesLen(len(f.Key)) + bytesLen(len(f.Endpoint)) + varintLen(f.PlainSize) +
		varintLen(uint64(f.ChunkSize)) + varintLen(f.Offset) + varintLen(exp) + 32
	if f.HasEncodedSize {
		n += varintLen(f.EncodedSize)
	}
	if f.HasBase {
		n += 32
	}
	if f.Lane {
		n += varintLen(f.LaneTransfer)
	}
	return n
}

// Len returns the number of bytes Append adds.
func (f *OpHeader) Len() int { return frameLen(FrameOpHeader, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *OpHeader) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameOpHeader}
	c.length("key", len(f.Key), MaxKeyLen)
	c.length("endpoint", len(f.Endpoint), MaxNameLen)
	c.valid("priority", f.Priority.Valid(), f.Priority)
	c.valid("kind", f.Kind.Valid(), f.Kind)
	c.varint("plain size", f.PlainSize)
	c.varint("encoded size", f.EncodedSize)
	c.valid("encoded size", f.HasEncodedSize || f.EncodedSize == 0, "set without HasEncodedSize")
	c.valid("chunk size", f.ChunkSize > 0 && f.ChunkSize <= MaxChunkSize, f.ChunkSize)
	c.valid("base hash", f.HasBase || f.BaseHash == [32]byte{}, "set without HasBase")
	c.varint("offset", f.Offset)
	c.varint("lane transfer", f.LaneTransfer)
	c.valid("lane transfer", f.Lane || f.LaneTransfer == 0, "set without Lane")
	c.valid("eager", f.Lane || !f.Eager, "set without Lane")
	exp, ok := timeNanos(f.Expires)
	c.valid("expires", ok, f.Expires)
	if c.err != nil {
		return b, c.err
	}
	b, err := appendHeader(b, FrameOpHeader, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = append(b, f.ID[:]...)
	b = append(b, f.flags(), byte(f.Priority), byte(f.Kind), f.Mode)
	b = appendString(b, f.Key)
	b = appendString(b, f.Endpoint)
	b = quicvarint.Append(b, f.PlainSize)
	if f.HasEncodedSize {
		b = quicvarint.Append(b, f.EncodedSize)
	}
	b = quicvarint.Append(b, uint64(f.ChunkSize))
	b = quicvarint.Append(b, f.Offset)
	b = quicvarint.Append(b, exp)
	b = append(b, f.PayloadHash[:]...)
	if f.HasBase {
		b = append(b, f.BaseHash[:]...)
	}
	if f.Lane {
		b = quicvarint.Append(b, f.LaneTransfer)
	}
	return b, nil
}

func parseOpHeader(r *bodyReader) (Frame, error) {
	f := &OpHeader{}
	r.fixed("op id", f.ID[:])
	fl := r.u8("flags")
	if r.err == nil && fl&^opFlagsKnown != 0 {
		r.fail(ErrInvalidField, "flags", "unknown bits %#x", fl&^opFlagsKnown)
	}
	f.HasBase, f.HasEncodedSize, f.Summarized = fl&opFlagBase != 0, fl&opFlagEncodedSize != 0, fl&opFlagSummarized != 0
	f.Lane, f.Eager = fl&opFlagLane != 0, fl&opFlagEager != 0
	if r.err == nil && f.Eager && !f.Lane {
		r.fail(ErrInvalidField, "flags", "eager without lane")
	}
	f.Priority = edgesync.Priority(r.u8("priority"))
	if r.err == nil && !f.Priority.Valid() {
		r.fail(ErrInvalidField, "priority", "%d is no priority", uint8(f.Priority))
	}
	f.Kind = edgesync.OpKind(r.u8("kind"))
	if r.err == nil && !f.Kind.Valid() {
		r.fail(ErrInvalidField, "kind", "%d is no op kind", uint8(f.Kind))
	}
	f.Mode = r.u8("mode")
	f.Key = r.string("key", MaxKeyLen)
	f.Endpoint = r.string("endpoint", MaxNameLen)
	f.PlainSize = r.varint("plain size")
	if f.HasEncodedSize {
		f.EncodedSize = r.varint("encoded size")
	}
	f.ChunkSize = uint32(r.uintN("chunk size", 32))
	if r.err == nil && (f.ChunkSize == 0 || f.ChunkSize > MaxChunkSize) {
		r.fail(ErrInvalidField, "chunk size", "%d, want 1..%d", f.ChunkSize, MaxChunkSize)
	}
	f.Offset = r.varint("offset")
	f.Expires = timeFromNanos(r.varint("expires")) // a varint never passes maxTime
	r.fixed("payload hash", f.PayloadHash[:])
	if f.HasBase {
		r.fixed("base hash", f.BaseHash[:])
	}
	if f.Lane {
		f.LaneTransfer = r.varint("lane transfer")
	}
	return f, r.err
}
