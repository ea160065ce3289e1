package codec

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
)

// EncodeStream reads the payload described by h from r, starting at chunk
// from (r must be positioned at that chunk's offset), and writes each encoded
// chunk to w. It holds one plain chunk, its base region and its encoding at a
// time. When from is 0 it also checks that r held exactly h.Size bytes with
// h.Hash, so a payload that changed under the sender is caught
// (ErrHashMismatch). The header itself is not written: send it first with
// h.Append (or WriteStream).
func (e *Encoder) EncodeStream(ctx context.Context, w io.Writer, r io.Reader, h *Header, base *Base, from int64) error {
	if err := h.Validate(Limits{MaxSize: 1<<63 - 1, MaxChunkSize: MaxChunkSize}); err != nil {
		return fmt.Errorf("encode stream: %w", err)
	}
	if from < 0 || (from > 0 && from >= h.Chunks()) {
		return fmt.Errorf("encode stream: start chunk %d not in [0, %d): %w", from, h.Chunks(), ErrBadParam)
	}
	sum := sha256.New()
	plain := make([]byte, min(int64(h.ChunkSize), h.Size))
	var out []byte
	for i := from; i < h.Chunks(); i++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("encode stream: %w", err)
		}
		_, n, _ := h.ChunkRange(i)
		if _, err := io.ReadFull(r, plain[:n]); err != nil {
			return fmt.Errorf("encode stream: read chunk %d: %w", i, eofIsUnexpected(err))
		}
		sum.Write(plain[:n])
		var err error
		if out, err = e.EncodeChunk(out[:0], h, i, plain[:n], base); err != nil {
			return fmt.Errorf("encode stream: %w", err)
		}
		if _, err := w.Write(out); err != nil {
			return fmt.Errorf("encode stream: write chunk %d: %w", i, err)
		}
	}
	if from > 0 {
		return nil
	}
	var extra [1]byte
	if n, _ := io.ReadFull(r, extra[:]); n > 0 {
		return fmt.Errorf("encode stream: payload longer than %d bytes: %w", h.Size, ErrHashMismatch)
	}
	if got := Hash(sum.Sum(nil)); got != h.Hash {
		return fmt.Errorf("encode stream: payload hash %.16s…, header says %.16s…: %w", got, h.Hash, ErrHashMismatch)
	}
	return nil
}

// WriteStream writes h and then every chunk of the payload read from r: a
// self-describing encoding that ReadStream decodes.
func (e *Encoder) WriteStream(ctx context.Context, w io.Writer, r io.Reader, h *Header, base *Base) error {
	hb, err := h.Append(nil)
	if err != nil {
		return fmt.Errorf("write stream: %w", err)
	}
	if _, err := w.Write(hb); err != nil {
		return fmt.Errorf("write stream: header: %w", err)
	}
	return e.EncodeStream(ctx, w, r, h, base, 0)
}

// DecodeStream reads every chunk of the payload described by h from r and
// writes the plain bytes to w, one chunk at a time. For deltas it checks the
// base's size and hash before applying anything (ErrBaseMismatch). At the end
// it verifies the payload's SHA-256 (ErrHashMismatch): bytes written to w
// are unverified until DecodeStream returns nil.
func (d *Decoder) DecodeStream(ctx context.Context, w io.Writer, r io.Reader, h *Header, base *Base) error {
	if err := h.CheckBase(base); err != nil {
		return fmt.Errorf("decode stream: %w", err)
	}
	br, ok := r.(byteReader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	sum := sha256.New()
	var plain []byte
	for i := range h.Chunks() {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("decode stream: %w", err)
		}
		var err error
		if plain, err = d.readChunk(plain[:0], h, i, br, base); err != nil {
			return fmt.Errorf("decode stream: %w", err)
		}
		sum.Write(plain)
		if _, err := w.Write(plain); err != nil {
			return fmt.Errorf("decode stream: write chunk %d: %w", i, err)
		}
	}
	if got := Hash(sum.Sum(nil)); got != h.Hash {
		return fmt.Errorf("decode stream: payload hash %.16s…, header says %.16s…: %w", got, h.Hash, ErrHashMismatch)
	}
	return nil
}

// ReadStream reads a header (checked against lim) and then decodes the
// payload as DecodeStream does; it returns the header.
func (d *Decoder) ReadStream(ctx context.Context, w io.Writer, r io.Reader, base *Base, lim Limits) (Header, error) {
	br, ok := r.(byteReader)
	if !ok {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	h, err := ReadHeader(br, lim)
	if err != nil {
		return Header{}, fmt.Errorf("read stream: %w", err)
	}
	return h, d.DecodeStream(ctx, w, br, &h, base)
}

// Encode encodes a whole in-memory payload as header plus chunks. base may be
// nil for non-delta modes.
func Encode(mode Mode, level Level, chunkSize int, payload []byte, base []byte) ([]byte, error) {
	b := NewBase(base)
	if !mode.IsDelta() {
		b = nil
	}
	h, err := NewHeader(mode, level, chunkSize, int64(len(payload)), HashBytes(payload), b)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	var out bytes.Buffer
	var e Encoder
	if err := e.WriteStream(context.Background(), &out, bytes.NewReader(payload), &h, b); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return out.Bytes(), nil
}

// Decode decodes the output of Encode (or WriteStream) against base (nil is
// an empty base; non-delta modes ignore it). Bytes after the stream are an
// error.
func Decode(enc []byte, base []byte, lim Limits) ([]byte, error) {
	b := &Base{R: bytes.NewReader(base), Size: int64(len(base))}
	var out bytes.Buffer
	var d Decoder
	r := bytes.NewReader(enc)
	if _, err := d.ReadStream(context.Background(), &out, r, b, lim); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("decode: %d bytes after the last chunk: %w", r.Len(), ErrCorrupt)
	}
	return out.Bytes(), nil
}
