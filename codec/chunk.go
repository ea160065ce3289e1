package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/klauspost/compress/zstd"
)

// An encoded chunk is self-delimiting:
//
//	mode     1 byte: the mode this chunk actually used
//	plain    uvarint: plain length
//	baseOff  uvarint: start of the base region (delta modes only)
//	baseLen  uvarint: length of the base region (delta modes only)
//	bodyLen  uvarint
//	body     full: the plain bytes; zstd: one zstd frame; delta: one zstd
//	         frame whose raw dictionary is base[baseOff:baseOff+baseLen]
//
// The region is recorded rather than derived so that the decoder does not
// depend on the encoder's region policy. Compressed bodies are always shorter
// than the plain bytes (the encoder falls back to full otherwise), which
// bounds what a decoder reads before it decodes anything.

// Encoder encodes chunks. It holds scratch buffers and takes zstd encoders
// from package pools per call; it is not safe for concurrent use (use one
// per goroutine), and the zero value is ready.
type Encoder struct {
	region []byte
	alt    []byte
	body   []byte
}

// EncodeChunk appends the encoding of chunk index of the payload described by
// h to dst; plain must be exactly that chunk's bytes and, for delta modes,
// base the base named by h. Output is deterministic for the same inputs.
func (e *Encoder) EncodeChunk(dst []byte, h *Header, index int64, plain []byte, base *Base) ([]byte, error) {
	off, n, ok := h.ChunkRange(index)
	if !ok {
		return dst, fmt.Errorf("encode chunk %d: not in [0, %d): %w", index, h.Chunks(), ErrBadParam)
	}
	if len(plain) != n {
		return dst, fmt.Errorf("encode chunk %d: %d plain bytes, header wants %d: %w", index, len(plain), n, ErrBadParam)
	}
	mode := ModeFull
	var regOff int64
	var body []byte
	var err error
	switch h.Mode {
	case ModeFull:
	case ModeZstd:
		if body, err = e.zstd(h.Level, plain); err != nil {
			return dst, fmt.Errorf("encode chunk %d: %w", index, err)
		}
		mode = ModeZstd
	case ModeDelta, ModeDeltaZstd:
		if base == nil {
			return dst, fmt.Errorf("encode chunk %d: %w", index, ErrNoBase)
		}
		if base.Size != h.BaseSize {
			return dst, fmt.Errorf("encode chunk %d: base size %d, header says %d: %w", index, base.Size, h.BaseSize, ErrBaseMismatch)
		}
		regOff = max(0, off-int64(h.DeltaMargin))
		regEnd := min(h.BaseSize, off+int64(n)+int64(h.DeltaMargin))
		if regEnd > regOff {
			if e.region, err = base.readRegion(e.region, regOff, int(regEnd-regOff)); err != nil {
				return dst, fmt.Errorf("encode chunk %d: %w", index, err)
			}
			if body, err = e.delta(h.Level, h.Mode == ModeDelta, plain, e.region); err != nil {
				return dst, fmt.Errorf("encode chunk %d: %w", index, err)
			}
			mode = h.Mode
		}
		// Fall back to zstd when the base did not help much: a dictionary
		// delta is rarely worse than plain zstd, so only then is the second
		// encode worth its CPU. ModeDelta never entropy-codes.
		if h.Mode == ModeDeltaZstd && (mode == ModeFull || 2*len(body) > len(plain)) {
			e.body, body = body, nil // keep the delta while encoding zstd
			alt, err := e.zstd(h.Level, plain)
			if err != nil {
				return dst, fmt.Errorf("encode chunk %d: %w", index, err)
			}
			if mode == ModeFull || len(alt) < len(e.body) {
				body, mode = alt, ModeZstd
			} else {
				body = e.body
			}
		}
	default:
		return dst, fmt.Errorf("encode chunk %d: mode %s: %w", index, h.Mode, ErrBadMode)
	}
	if mode != ModeFull && len(body) >= len(plain) {
		mode = ModeFull
	}
	if mode == ModeFull {
		body = plain
	}
	dst = append(dst, byte(mode))
	dst = binary.AppendUvarint(dst, uint64(n))
	if mode.IsDelta() {
		dst = binary.AppendUvarint(dst, uint64(regOff))
		dst = binary.AppendUvarint(dst, uint64(len(e.region)))
	}
	dst = binary.AppendUvarint(dst, uint64(len(body)))
	return append(dst, body...), nil
}

func (e *Encoder) zstd(level Level, plain []byte) ([]byte, error) {
	k := encKey{level: level, windowLog: windowLogFor(len(plain))}
	enc, err := getEncoder(k)
	if err != nil {
		return nil, err
	}
	e.alt = enc.EncodeAll(plain, e.alt[:0])
	putEncoder(k, enc)
	return e.alt, nil
}

func (e *Encoder) delta(level Level, noEntropy bool, plain, region []byte) ([]byte, error) {
	// Measured by BenchmarkDelta: klauspost's best encoder is both larger
	// and 3-9x slower than its better encoder on dictionary deltas, because
	// it clears and rebuilds a 32 MiB dictionary table for every chunk. So
	// LevelBest deltas use the better encoder.
	level = min(level, LevelBetter)
	k := encKey{level: level, windowLog: windowLogFor(len(region) + len(plain)), dict: true, noEntropy: noEntropy}
	enc, err := getEncoder(k)
	if err != nil {
		return nil, err
	}
	// The streaming path, not EncodeAll: ResetWithOptions already indexes
	// the dictionary into the encoder's stream state, and EncodeAll would
	// index it a second time into a separate encoder (measured: half the
	// delta's CPU). ResetContentSize keeps the same dictionary, so it only
	// re-arms the tables, and lets the frame declare its size and a window
	// no larger than the chunk.
	w := sliceWriter{b: e.body[:0]}
	err = enc.ResetWithOptions(&w, zstd.WithEncoderDictRaw(0, region))
	if err == nil {
		enc.ResetContentSize(&w, int64(len(plain)))
		if _, err = enc.Write(plain); err == nil {
			err = enc.Close()
		}
	}
	putEncoder(k, enc)
	if err != nil {
		return nil, fmt.Errorf("zstd delta: %w", err)
	}
	e.body = w.b
	return e.body, nil
}

type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// chunkHeader is the parsed prefix of an encoded chunk.
type chunkHeader struct {
	mode    Mode
	plain   int
	regOff  int64
	regLen  int
	bodyLen int
}

// readChunkHeader reads and bounds-checks a chunk's prefix against the
// header and the chunk's expected plain length.
func readChunkHeader(r io.ByteReader, h *Header, want int) (chunkHeader, error) {
	var c chunkHeader
	m, err := r.ReadByte()
	if err != nil {
		return c, eofIsUnexpected(err)
	}
	c.mode = Mode(m)
	if !c.mode.isData() {
		return c, fmt.Errorf("chunk mode %s: %w", c.mode, ErrBadMode)
	}
	if c.mode.IsDelta() && !h.Mode.IsDelta() {
		return c, fmt.Errorf("delta chunk in %s payload: %w", h.Mode, ErrCorrupt)
	}
	p, err := readUvarint(r, "chunk plain length", MaxChunkSize)
	if err != nil {
		return c, err
	}
	c.plain = int(p)
	if c.plain > want {
		return c, fmt.Errorf("chunk declares %d plain bytes, header allows %d: %w", c.plain, want, ErrTooLarge)
	}
	if c.plain < want {
		return c, fmt.Errorf("chunk declares %d plain bytes, header wants %d: %w", c.plain, want, ErrCorrupt)
	}
	if c.mode.IsDelta() {
		o, err := readUvarint(r, "base region offset", uint64(h.BaseSize))
		if err != nil {
			return c, err
		}
		l, err := readUvarint(r, "base region length", MaxDeltaRegion)
		if err != nil {
			return c, err
		}
		if l == 0 || o+l > uint64(h.BaseSize) {
			return c, fmt.Errorf("base region [%d, %d) outside base of %d bytes: %w", o, o+l, h.BaseSize, ErrCorrupt)
		}
		c.regOff, c.regLen = int64(o), int(l)
	}
	b, err := readUvarint(r, "chunk body length", uint64(c.plain))
	if err != nil {
		return c, err
	}
	c.bodyLen = int(b)
	if c.mode == ModeFull && c.bodyLen != c.plain {
		return c, fmt.Errorf("full chunk body %d bytes, plain %d: %w", c.bodyLen, c.plain, ErrCorrupt)
	}
	if c.mode != ModeFull && c.bodyLen >= c.plain {
		return c, fmt.Errorf("%s chunk body %d bytes not below plain %d: %w", c.mode, c.bodyLen, c.plain, ErrCorrupt)
	}
	return c, nil
}

// Decoder decodes chunks. It holds scratch buffers and takes zstd decoders
// from package pools per call; it is not safe for concurrent use, and the
// zero value is ready.
type Decoder struct {
	region []byte
	body   []byte
}

// DecodeChunk decodes chunk index of the payload described by h from the
// start of src, appends its plain bytes to dst and returns them with the
// number of bytes of src used. Output beyond the chunk's declared length
// fails with ErrTooLarge before it is produced. It checks base's size but
// not its hash: call h.CheckBase once per payload before the first chunk.
func (d *Decoder) DecodeChunk(dst []byte, h *Header, index int64, src []byte, base *Base) ([]byte, int, error) {
	_, want, ok := h.ChunkRange(index)
	if !ok {
		return dst, 0, fmt.Errorf("decode chunk %d: not in [0, %d): %w", index, h.Chunks(), ErrBadParam)
	}
	r := bytes.NewReader(src)
	c, err := readChunkHeader(r, h, want)
	if err != nil {
		return dst, 0, fmt.Errorf("decode chunk %d: %w", index, err)
	}
	used := len(src) - r.Len()
	if r.Len() < c.bodyLen {
		return dst, 0, fmt.Errorf("decode chunk %d: body %d bytes, have %d: %w", index, c.bodyLen, r.Len(), io.ErrUnexpectedEOF)
	}
	out, err := d.decodeBody(dst, h, c, src[used:used+c.bodyLen], base)
	if err != nil {
		return dst, 0, fmt.Errorf("decode chunk %d: %w", index, err)
	}
	return out, used + c.bodyLen, nil
}

// readChunk reads one chunk from r, decodes it and appends it to dst.
func (d *Decoder) readChunk(dst []byte, h *Header, index int64, r byteReader, base *Base) ([]byte, error) {
	_, want, _ := h.ChunkRange(index)
	c, err := readChunkHeader(r, h, want)
	if err != nil {
		return dst, fmt.Errorf("decode chunk %d: %w", index, err)
	}
	d.body = slices.Grow(d.body[:0], c.bodyLen)[:c.bodyLen]
	if _, err := io.ReadFull(r, d.body); err != nil {
		return dst, fmt.Errorf("decode chunk %d: body: %w", index, eofIsUnexpected(err))
	}
	out, err := d.decodeBody(dst, h, c, d.body, base)
	if err != nil {
		return dst, fmt.Errorf("decode chunk %d: %w", index, err)
	}
	return out, nil
}

func (d *Decoder) decodeBody(dst []byte, h *Header, c chunkHeader, body []byte, base *Base) ([]byte, error) {
	if c.mode == ModeFull {
		return append(dst, body...), nil
	}
	var dict []byte
	if c.mode.IsDelta() {
		if base == nil {
			return dst, ErrNoBase
		}
		if base.Size != h.BaseSize {
			return dst, fmt.Errorf("base size %d, header says %d: %w", base.Size, h.BaseSize, ErrBaseMismatch)
		}
		var err error
		if d.region, err = base.readRegion(d.region, c.regOff, c.regLen); err != nil {
			return dst, err
		}
		dict = d.region
	}
	zd, err := getDecoder(dict)
	if err != nil {
		return dst, err
	}
	// The capacity given to DecodeAll is exactly the declared length: a
	// frame that claims or produces more stops with ErrDecoderSizeExceeded.
	start := len(dst)
	dst = slices.Grow(dst, c.plain)
	out, err := zd.DecodeAll(body, dst[start:start:start+c.plain])
	putDecoder(zd, dict != nil)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return dst[:start], fmt.Errorf("%s body decodes past %d bytes: %w: %w", c.mode, c.plain, ErrTooLarge, err)
	case err != nil:
		return dst[:start], fmt.Errorf("%s body: %w: %w", c.mode, ErrCorrupt, err)
	case len(out) != c.plain:
		return dst[:start], fmt.Errorf("%s body decodes to %d bytes, want %d: %w", c.mode, len(out), c.plain, ErrCorrupt)
	}
	dst = dst[:start+c.plain]
	if c.plain > 0 && &out[0] != &dst[start] {
		copy(dst[start:], out) // DecodeAll reallocated; not expected with a capped slice
	}
	return dst, nil
}

// byteReader is what stream decoding reads chunks from.
type byteReader interface {
	io.Reader
	io.ByteReader
}
