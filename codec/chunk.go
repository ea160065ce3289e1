package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/klauspost/compress/huff0"
	"github.com/klauspost/compress/zstd"
)

// An encoded chunk is self-delimiting:
//
//	mode     1 byte: the mode this chunk actually used
//	plain    uvarint: plain length
//	full and zstd chunks:
//	  bodyLen  uvarint
//	  body     full: the plain bytes; zstd: one zstd frame
//	delta chunks: one record per block of deltaBlockSize plain bytes
//	  opsHead  uvarint(stored<<3 | recorded<<2 | kind) of the ops stream
//	  regOff   uvarint, only when recorded: start of the base region
//	  regLen   uvarint, only when recorded: its length (0: none)
//	  ops      the ops stream's stored bytes (delta.go)
//	  litsHead uvarint(stored<<3 | kind) of the literal stream
//	  lits     its stored bytes
//	a stream's kind: 0 the bytes themselves, 1 a zstd frame without its
//	4-byte magic number that declares its content size, 2 a huff0 1X
//	Huffman table and bitstream.
//
// The default region of a block at plain offset X is base[X-8KiB :
// X+len+8KiB] clipped to the base (regionMargin); any other region (a
// realigned one, or another Header.DeltaMargin) is recorded, so that the
// decoder depends on neither the encoder's alignment nor its margin. The
// ops' cursor starts at X - regionStart: where a block's bytes sit when
// nothing before them moved. Stored bytes always add up to less
// than the plain bytes (the encoder falls back to full otherwise), which
// bounds what a decoder reads before it decodes anything, and each stream
// decodes to at most maxOpsLen(block) or block bytes.

// deltaBlockSize is the plain bytes per delta block (part of the format:
// changing it needs a new header version). BenchmarkDelta at 1 MiB chunks,
// delta+zstd better: 128 KiB blocks cost 4 % more on the log, 3 % on the
// blob and 40 % on JSON than 1 MiB blocks, in per-block stream overhead
// (frame headers, Huffman and FSE tables) and in zstd's smaller view.
const deltaBlockSize = 1 << 20

// ChunkFraming is the most bytes EncodeChunk adds to a chunk's plain
// bytes: its mode and two uvarint lengths (4 bytes each for chunks up to
// MaxChunkSize). A body that is not smaller than the plain bytes is
// stored plain, so an encoded chunk of n plain bytes takes at most
// n + ChunkFraming bytes.
const ChunkFraming = 1 + 2*4

// Encoder encodes chunks. It holds scratch buffers and takes zstd encoders
// from package pools per call; it is not safe for concurrent use (use one
// per goroutine), and the zero value is ready.
type Encoder struct {
	region []byte
	alt    []byte
	body   []byte
	opsBuf []byte
	ops    deltaOps
	huff   huff0.Scratch
	// litBytes is how many plain bytes the last deltaBody left as literals.
	litBytes int
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
	var body []byte
	var err error
	switch h.Mode {
	case ModeFull:
	case ModeZstd:
		if e.alt, err = e.plainFrame(e.alt[:0], h.Level, false, plain); err != nil {
			return dst, fmt.Errorf("encode chunk %d: %w", index, err)
		}
		body, mode = e.alt, ModeZstd
	case ModeDelta, ModeDeltaZstd:
		if base == nil {
			return dst, fmt.Errorf("encode chunk %d: %w", index, ErrNoBase)
		}
		if base.Size != h.BaseSize {
			return dst, fmt.Errorf("encode chunk %d: base size %d, header says %d: %w", index, base.Size, h.BaseSize, ErrBaseMismatch)
		}
		if e.body, err = e.deltaBody(e.body[:0], h, off, plain, base); err != nil {
			return dst, fmt.Errorf("encode chunk %d: %w", index, err)
		}
		body, mode = e.body, h.Mode
		// Fall back to zstd when the base did not help much: when most of
		// the chunk is literals or the delta is over half the plain size.
		// Otherwise a delta is rarely worse than plain zstd, so only then is
		// the second encode worth its CPU. ModeDelta never entropy-codes.
		if h.Mode == ModeDeltaZstd && (2*len(body) > len(plain) || 2*e.litBytes > len(plain)) {
			if e.alt, err = e.plainFrame(e.alt[:0], h.Level, false, plain); err != nil {
				return dst, fmt.Errorf("encode chunk %d: %w", index, err)
			}
			if len(e.alt) < len(body) {
				body, mode = e.alt, ModeZstd
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
	if !mode.IsDelta() {
		dst = binary.AppendUvarint(dst, uint64(len(body)))
	}
	return append(dst, body...), nil
}

// deltaBody appends the block records of a delta chunk at plain offset off.
func (e *Encoder) deltaBody(dst []byte, h *Header, off int64, plain []byte, base *Base) ([]byte, error) {
	noEntropy := h.Mode == ModeDelta
	e.litBytes = 0
	for j := 0; j < len(plain); j += deltaBlockSize {
		blk := plain[j:min(j+deltaBlockSize, len(plain))]
		x := off + int64(j)
		at, err := e.align(x, blk, base, h)
		if err != nil {
			return dst, err
		}
		// The region around the block's own offset, unless the old bytes
		// moved out of it: a drift within the margin costs one op's cursor
		// move, a recorded region about 7 bytes.
		lo, hi := baseRegion(h.BaseSize, x, len(blk), h.DeltaMargin)
		if d := at - x; d < -int64(h.DeltaMargin) || d > int64(h.DeltaMargin) {
			lo, hi = baseRegion(h.BaseSize, at, len(blk), h.DeltaMargin)
		}
		dlo, dhi := baseRegion(h.BaseSize, x, len(blk), regionMargin)
		explicit := lo != dlo || hi != dhi
		e.region = e.region[:0]
		if hi > lo {
			if e.region, err = base.readRegion(e.region, lo, int(hi-lo)); err != nil {
				return dst, err
			}
		}
		e.ops.diff(blk, e.region, int(at-lo), int(x-lo))
		e.litBytes += len(e.ops.lits)
		e.opsBuf = e.ops.appendOps(e.opsBuf[:0])
		if len(e.opsBuf) > maxOpsLen(len(blk)) {
			return dst, fmt.Errorf("delta ops of %d bytes above %d for a %d-byte block", len(e.opsBuf), maxOpsLen(len(blk)), len(blk))
		}
		kind, stored, err := e.packStream(h.Level, noEntropy, e.opsBuf)
		if err != nil {
			return dst, err
		}
		dst = appendStreamHead(dst, len(stored), explicit, kind)
		if explicit {
			dst = binary.AppendUvarint(dst, uint64(lo))
			dst = binary.AppendUvarint(dst, uint64(hi-lo))
		}
		dst = append(dst, stored...)
		if kind, stored, err = e.packStream(h.Level, noEntropy, e.ops.lits); err != nil {
			return dst, err
		}
		dst = appendStreamHead(dst, len(stored), false, kind)
		dst = append(dst, stored...)
	}
	return dst, nil
}

// regionMargin is the margin of a block's default base region: part of the
// format, so that a decoder need not know the margin the encoder used
// (Header.DeltaMargin is the encoder's setting; the default is the same).
const regionMargin = 8 << 10

// baseRegion returns the base region [lo, hi) of a block of n bytes whose
// old bytes are expected at base offset at, with margin m bytes either
// side, clipped to a base of size bytes; hi == lo when none.
func baseRegion(size, at int64, n, m int) (lo, hi int64) {
	lo = max(0, at-int64(m))
	hi = min(size, at+int64(n)+int64(m))
	if hi <= lo {
		return 0, 0
	}
	return lo, hi
}

// zstdMagic starts every zstd frame; delta streams leave it out.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// minFrameInput is the smallest stream worth a zstd frame: a frame's own
// header and block header are about 9 bytes.
const minFrameInput = 32

// How a delta stream is stored (the low two bits of its length field).
const (
	streamRaw  = iota // the bytes as they are
	streamZstd        // a zstd frame without its magic number, declaring its size
	streamHuff        // huff0 1X: Huffman table and bitstream (entropy modes only)
	numStreamKinds
)

// packStream returns how to store one stream of a delta block: the
// smallest of the bytes as they are, a zstd frame (which finds repeats) and,
// when entropy coding is allowed, a bare Huffman coding (no frame, block or
// sequence headers: on a 64 KiB JSON chunk's ~100 new bytes it is ~10 bytes
// smaller than zstd). Ties go to the simpler form. stored is valid until the
// next call.
func (e *Encoder) packStream(level Level, noEntropy bool, data []byte) (kind int, stored []byte, err error) {
	kind, stored = streamRaw, data
	if len(data) >= minFrameInput {
		if e.alt, err = e.plainFrame(e.alt[:0], level, noEntropy, data); err != nil {
			return 0, nil, err
		}
		if !bytes.HasPrefix(e.alt, zstdMagic) {
			return 0, nil, fmt.Errorf("zstd frame without magic number")
		}
		if frame := e.alt[len(zstdMagic):]; len(frame) < len(stored) {
			kind, stored = streamZstd, frame
		}
	}
	if !noEntropy && len(data) >= 2 && len(data) <= huff0.BlockSizeMax {
		e.huff.Reuse = huff0.ReusePolicyNone
		// ErrIncompressible and ErrUseRLE: leave it to the other forms.
		if out, _, err := huff0.Compress1X(data, &e.huff); err == nil && len(out) < len(stored) {
			kind, stored = streamHuff, out
		}
	}
	return kind, stored, nil
}

// appendStreamHead appends a stream's head: uvarint(stored<<3 | flag<<2 |
// kind). The flag is the block's "region recorded" bit on its ops stream
// (a bit there instead of a byte of its own) and 0 on its literal stream.
func appendStreamHead(dst []byte, stored int, flag bool, kind int) []byte {
	v := uint64(stored)<<3 | uint64(kind)
	if flag {
		v |= 4
	}
	return binary.AppendUvarint(dst, v)
}

// Alignment: a block's old bytes are expected at the same offset in the
// base, within the margin. An insertion or deletion larger than the margin
// shifts them out, so when a block's anchors (64 bytes at its start and at
// its middle) are not within the default region, the encoder looks for them
// within alignSearch bytes either side; the region is centred where the
// first anchor found says the block starts. Within the default region the
// anchor only says where the matcher starts looking. Deterministic: it
// depends only on the block and the base.
const (
	anchorLen   = 64
	alignSearch = 1 << 20
)

// align returns the base offset where blk's old bytes most likely start.
func (e *Encoder) align(at int64, blk []byte, base *Base, h *Header) (int64, error) {
	if len(blk) < 2*anchorLen || h.BaseSize < anchorLen {
		return at, nil
	}
	anchors := [2]int{0, len(blk) / 2}
	find := func(lo, hi int64) (int64, bool, error) {
		lo, hi = max(0, lo), min(h.BaseSize, hi)
		if hi-lo < anchorLen {
			return 0, false, nil
		}
		var err error
		if e.region, err = base.readRegion(e.region, lo, int(hi-lo)); err != nil {
			return 0, false, err
		}
		for _, a := range anchors {
			if i := bytes.Index(e.region, blk[a:a+anchorLen]); i >= 0 {
				return lo + int64(i) - int64(a), true, nil
			}
		}
		return 0, false, nil
	}
	m := int64(h.DeltaMargin)
	if p, ok, err := find(at-m, at+int64(len(blk))+m); ok || err != nil {
		if err != nil {
			return at, err
		}
		return p, nil
	}
	p, ok, err := find(at-alignSearch, at+int64(len(blk))+alignSearch)
	if !ok || err != nil {
		return at, err
	}
	return p, nil
}

// plainFrame appends a zstd frame of plain without dictionary to dst.
func (e *Encoder) plainFrame(dst []byte, level Level, noEntropy bool, plain []byte) ([]byte, error) {
	k := encKey{level: level, windowLog: windowLogFor(len(plain)), noEntropy: noEntropy}
	enc, err := getEncoder(k)
	if err != nil {
		return dst, err
	}
	dst = enc.EncodeAll(plain, dst)
	putEncoder(k, enc)
	return dst, nil
}

// Decoder decodes chunks. It holds scratch buffers and takes zstd decoders
// from package pools per call; it is not safe for concurrent use, and the
// zero value is ready.
type Decoder struct {
	// Budget, when set, is asked before a scratch buffer grows: a
	// chunk's stored body, a delta block's streams and its base region
	// (up to MaxDeltaRegion), whose sizes the encoded bytes declare. Its
	// error fails the chunk before the allocation. Free gives the
	// scratch back.
	Budget Budget
	// reserved is what the scratch holds of Budget.
	reserved int

	region []byte
	body   []byte
	ops    []byte
	lits   []byte
}

// Budget accounts for the memory a Decoder holds as scratch (it is
// wire.Budget's method set).
type Budget interface {
	// Reserve is called before a scratch buffer grows by n bytes.
	Reserve(n int) error
	// Release gives back n bytes reserved before.
	Release(n int)
}

// scratch returns buf[:0] with room for n bytes, its growth reserved in
// d.Budget first; what buf held is not kept.
func (d *Decoder) scratch(buf []byte, n int) ([]byte, error) {
	if cap(buf) >= n {
		return buf[:0], nil
	}
	if d.Budget != nil {
		if err := d.Budget.Reserve(n - cap(buf)); err != nil {
			return buf[:0], err
		}
		d.reserved += n - cap(buf)
	}
	return make([]byte, 0, n), nil
}

// Free drops the scratch buffers and gives their reservation back to
// d.Budget; the Decoder may be used again.
func (d *Decoder) Free() {
	if d.Budget != nil && d.reserved > 0 {
		d.Budget.Release(d.reserved)
	}
	d.reserved = 0
	d.region, d.body, d.ops, d.lits = nil, nil, nil, nil
}

// DecodeChunk decodes chunk index of the payload described by h from the
// start of src, appends its plain bytes to dst and returns them with the
// number of bytes of src used. Output beyond the chunk's declared length
// fails with ErrTooLarge before it is produced. It checks base's size but
// not its hash: call h.CheckBase once per payload before the first chunk.
func (d *Decoder) DecodeChunk(dst []byte, h *Header, index int64, src []byte, base *Base) ([]byte, int, error) {
	r := bytes.NewBuffer(src) // read only: its Next gives stored bodies in place
	out, err := d.readChunk(dst, h, index, r, base)
	if err != nil {
		return dst, 0, err
	}
	return out, len(src) - r.Len(), nil
}

// readChunk reads one chunk from r, decodes it and appends it to dst.
func (d *Decoder) readChunk(dst []byte, h *Header, index int64, r byteReader, base *Base) ([]byte, error) {
	start := len(dst)
	out, err := d.readChunkBody(dst, h, index, r, base)
	if err != nil {
		return dst[:start], fmt.Errorf("decode chunk %d: %w", index, err)
	}
	return out, nil
}

// readChunkBody reads chunk index (see the format above) from r and
// appends its plain bytes to dst; readChunk names the chunk in its errors.
func (d *Decoder) readChunkBody(dst []byte, h *Header, index int64, r byteReader, base *Base) ([]byte, error) {
	off, want, ok := h.ChunkRange(index)
	if !ok {
		return dst, fmt.Errorf("not in [0, %d): %w", h.Chunks(), ErrBadParam)
	}
	mode, plain, err := readChunkHead(r, h, want)
	if err != nil {
		return dst, err
	}
	if !mode.IsDelta() {
		return d.readWholeBody(dst, r, mode, plain)
	}
	return d.readDeltaBody(dst, h, off, plain, r, base)
}

// readChunkHead reads a chunk's mode and plain length; the mode must fit
// the payload's and the length must be the want bytes h gives the chunk.
func readChunkHead(r byteReader, h *Header, want int) (Mode, int, error) {
	m, err := r.ReadByte()
	if err != nil {
		return 0, 0, eofIsUnexpected(err)
	}
	mode := Mode(m)
	if !mode.isData() {
		return 0, 0, fmt.Errorf("chunk mode %s: %w", mode, ErrBadMode)
	}
	if mode.IsDelta() && !h.Mode.IsDelta() {
		return 0, 0, fmt.Errorf("delta chunk in %s payload: %w", h.Mode, ErrCorrupt)
	}
	p, err := readUvarint(r, "chunk plain length", MaxChunkSize)
	if err != nil {
		return 0, 0, err
	}
	plain := int(p)
	if plain > want {
		return 0, 0, fmt.Errorf("chunk declares %d plain bytes, header allows %d: %w", plain, want, ErrTooLarge)
	}
	if plain < want {
		return 0, 0, fmt.Errorf("chunk declares %d plain bytes, header wants %d: %w", plain, want, ErrCorrupt)
	}
	return mode, plain, nil
}

// readWholeBody reads the body of a full or zstd chunk of plain bytes and
// appends them to dst.
func (d *Decoder) readWholeBody(dst []byte, r byteReader, mode Mode, plain int) ([]byte, error) {
	b, err := readUvarint(r, "chunk body length", uint64(plain))
	if err != nil {
		return dst, err
	}
	bodyLen := int(b)
	if mode == ModeFull && bodyLen != plain {
		return dst, fmt.Errorf("full chunk body %d bytes, plain %d: %w", bodyLen, plain, ErrCorrupt)
	}
	if mode == ModeZstd && bodyLen >= plain {
		return dst, fmt.Errorf("zstd chunk body %d bytes not below plain %d: %w", bodyLen, plain, ErrCorrupt)
	}
	body, err := d.readBody(r, bodyLen)
	if err != nil {
		return dst, err
	}
	if mode == ModeFull {
		return append(dst, body...), nil
	}
	return decodeFrame(dst, body, plain)
}

// readDeltaBody reads the block records of a delta chunk of plain bytes at
// plain offset off (what deltaBody wrote), applies them to base and
// appends the result to dst.
func (d *Decoder) readDeltaBody(dst []byte, h *Header, off int64, plain int, r byteReader, base *Base) ([]byte, error) {
	if base == nil {
		return dst, ErrNoBase
	}
	if base.Size != h.BaseSize {
		return dst, fmt.Errorf("base size %d, header says %d: %w", base.Size, h.BaseSize, ErrBaseMismatch)
	}
	used := 0 // stored stream bytes so far: they must stay below plain
	for j := 0; j < plain; j += deltaBlockSize {
		blk := min(deltaBlockSize, plain-j)
		x := off + int64(j) // the block's plain offset
		n, explicit, kind, err := readStreamHead(r, "delta ops", plain, &used)
		if err != nil {
			return dst, fmt.Errorf("delta block at %d: %w", j, err)
		}
		lo, hi := baseRegion(h.BaseSize, x, blk, regionMargin)
		if explicit {
			if lo, hi, err = readBaseRegion(r, h.BaseSize); err != nil {
				return dst, err
			}
		}
		if d.ops, err = d.readStream(d.ops, r, "delta ops", n, kind, maxOpsLen(blk)); err != nil {
			return dst, fmt.Errorf("delta block at %d: %w", j, err)
		}
		n, explicit, kind, err = readStreamHead(r, "delta literals", plain, &used)
		if err != nil {
			return dst, fmt.Errorf("delta block at %d: %w", j, err)
		}
		if explicit {
			return dst, fmt.Errorf("delta block at %d: literal stream with the region flag: %w", j, ErrCorrupt)
		}
		if d.lits, err = d.readStream(d.lits, r, "delta literals", n, kind, blk); err != nil {
			return dst, fmt.Errorf("delta block at %d: %w", j, err)
		}
		d.region = d.region[:0]
		if hi > lo {
			if d.region, err = d.scratch(d.region, int(hi-lo)); err != nil {
				return dst, fmt.Errorf("delta block at %d: base region of %d bytes: %w", j, hi-lo, err)
			}
			if d.region, err = base.readRegion(d.region, lo, int(hi-lo)); err != nil {
				return dst, err
			}
		}
		if dst, err = applyOps(dst, d.ops, d.lits, d.region, blk, x-lo); err != nil {
			return dst, fmt.Errorf("delta block at %d: %w", j, err)
		}
	}
	if plain == 0 {
		return dst, fmt.Errorf("empty delta chunk: %w", ErrCorrupt)
	}
	return dst, nil
}

// readBaseRegion reads a block's recorded base region, which must lie
// inside a base of baseSize bytes.
func readBaseRegion(r byteReader, baseSize int64) (lo, hi int64, err error) {
	o, err := readUvarint(r, "base region offset", uint64(baseSize))
	if err != nil {
		return 0, 0, err
	}
	l, err := readUvarint(r, "base region length", MaxDeltaRegion)
	if err != nil {
		return 0, 0, err
	}
	if o+l > uint64(baseSize) {
		return 0, 0, fmt.Errorf("base region [%d, %d) outside base of %d bytes: %w", o, o+l, baseSize, ErrCorrupt)
	}
	return int64(o), int64(o + l), nil
}

// readStreamHead reads a stream's head (see appendStreamHead). used counts
// the stored bytes of the chunk so far; they must stay below plain.
func readStreamHead(r byteReader, field string, plain int, used *int) (n int, flag bool, kind int, err error) {
	v, err := readUvarint(r, field+" length", uint64(plain)<<3|7)
	if err != nil {
		return 0, false, 0, err
	}
	n, flag, kind = int(v>>3), v&4 != 0, int(v&3)
	if kind >= numStreamKinds {
		return 0, false, 0, fmt.Errorf("%s: stream kind %d: %w", field, kind, ErrCorrupt)
	}
	if *used += n; *used >= plain {
		return 0, false, 0, fmt.Errorf("delta streams reach %d bytes, not below plain %d: %w", *used, plain, ErrCorrupt)
	}
	return n, flag, kind, nil
}

// readStream reads the n stored bytes of a stream of the given kind and
// decodes them, at most max bytes, into dst[:0].
func (d *Decoder) readStream(dst []byte, r byteReader, field string, n, kind, max int) ([]byte, error) {
	var err error
	switch kind {
	case streamRaw:
		if n > max {
			return dst, fmt.Errorf("%s: %d bytes above %d: %w", field, n, max, ErrTooLarge)
		}
		body, err := d.readBody(r, n)
		if err != nil {
			return dst, err
		}
		if dst, err = d.scratch(dst, n); err != nil {
			return dst, fmt.Errorf("%s: %w", field, err)
		}
		return append(dst, body...), nil
	case streamHuff:
		body, err := d.readBody(r, n)
		if err != nil {
			return dst, err
		}
		if dst, err = d.scratch(dst, min(max, huff0.BlockSizeMax)); err != nil {
			return dst, fmt.Errorf("%s: %w", field, err)
		}
		if dst, err = d.huffStream(dst, body, max); err != nil {
			return dst, fmt.Errorf("%s: %w", field, err)
		}
		return dst, nil
	}
	// Put back the frame's magic number in front of its stored bytes.
	body, err := d.readBody(r, len(zstdMagic)+n, zstdMagic...)
	if err != nil {
		return dst, fmt.Errorf("%s: %w", field, err)
	}
	// The frame declares at most max bytes (decodeStreamFrame): the room
	// is reserved before it is checked.
	if dst, err = d.scratch(dst, max); err != nil {
		return dst, fmt.Errorf("%s: %w", field, err)
	}
	if dst, err = decodeStreamFrame(dst, body, max); err != nil {
		return dst, fmt.Errorf("%s: %w", field, err)
	}
	return dst, nil
}

// huffScratch holds the tables of huff0 decoding (about 15 KiB each),
// taken for one stream's decoding and given back at once: a Decoder kept
// one for its life, which every op stream in the middle of a delta op
// then held between its chunks, outside its Budget (docs/core.md,
// "What a connection can make the core hold").
var huffScratch = sync.Pool{New: func() any { return new(huff0.Scratch) }}

// huffStream decodes a huff0 1X stream (table, then bitstream) of at most
// max bytes into dst[:0].
func (d *Decoder) huffStream(dst, body []byte, max int) ([]byte, error) {
	sc := huffScratch.Get().(*huff0.Scratch)
	s, rest, err := huff0.ReadTable(body, sc)
	if err != nil {
		// A scratch a table failed in is not reused (the GC has it).
		return dst, fmt.Errorf("huffman table: %w: %w", ErrCorrupt, err)
	}
	defer huffScratch.Put(s)
	max = min(max, huff0.BlockSizeMax)
	out, err := s.Decoder().Decompress1X(slices.Grow(dst[:0], max)[:0:max], rest)
	switch {
	case errors.Is(err, huff0.ErrMaxDecodedSizeExceeded):
		return dst[:0], fmt.Errorf("huffman stream decodes past %d bytes: %w: %w", max, ErrTooLarge, err)
	case err != nil:
		return dst[:0], fmt.Errorf("huffman stream: %w: %w", ErrCorrupt, err)
	}
	return out, nil
}

// readBody returns the next n stored bytes of r, prefix first (it counts
// in n). From a chunk in memory (DecodeChunk) they are that memory's, read
// in place; else they are read into d.body. What r holds, if it knows,
// is checked before the room for n is reserved and allocated.
func (d *Decoder) readBody(r byteReader, n int, prefix ...byte) ([]byte, error) {
	if lr, ok := r.(interface{ Len() int }); ok && n-len(prefix) > lr.Len() {
		return nil, fmt.Errorf("chunk body: %d bytes declared, %d left: %w", n-len(prefix), lr.Len(), io.ErrUnexpectedEOF)
	}
	if nr, ok := r.(interface{ Next(int) []byte }); ok && len(prefix) == 0 {
		return nr.Next(n), nil
	}
	var err error
	if d.body, err = d.scratch(d.body, n); err != nil {
		return nil, fmt.Errorf("chunk body of %d bytes: %w", n, err)
	}
	d.body = append(d.body, prefix...)[:n]
	if _, err := io.ReadFull(r, d.body[len(prefix):]); err != nil {
		return nil, fmt.Errorf("chunk body: %w", eofIsUnexpected(err))
	}
	return d.body, nil
}

// decodeFrame appends exactly n bytes decoded from the zstd frame body to
// dst.
func decodeFrame(dst, body []byte, n int) ([]byte, error) {
	start := len(dst)
	dst, err := decodeFrameMax(dst, body, n)
	if err == nil && len(dst)-start != n {
		return dst[:start], fmt.Errorf("zstd frame decodes to %d bytes, want %d: %w", len(dst)-start, n, ErrCorrupt)
	}
	return dst, err
}

// decodeStreamFrame appends the bytes decoded from the zstd frame body of a
// delta stream to dst. The frame must declare its size (the encoder's
// always do), at most max; a frame that does not, or declares more, is
// refused with ErrTooLarge before any decoding.
func decodeStreamFrame(dst, body []byte, max int) ([]byte, error) {
	var zh zstd.Header
	if err := zh.Decode(body); err != nil {
		return dst, fmt.Errorf("zstd frame header: %w: %w", ErrCorrupt, err)
	}
	if !zh.HasFCS {
		return dst, fmt.Errorf("zstd frame does not declare its size (at most %d): %w", max, ErrTooLarge)
	}
	if zh.FrameContentSize > uint64(max) {
		return dst, fmt.Errorf("zstd frame declares %d bytes, above %d: %w", zh.FrameContentSize, max, ErrTooLarge)
	}
	return decodeFrame(dst, body, int(zh.FrameContentSize))
}

// decodeFrameMax appends the bytes decoded from the zstd frame body to dst;
// more than max bytes is ErrTooLarge.
func decodeFrameMax(dst, body []byte, max int) ([]byte, error) {
	zd, err := getDecoder()
	if err != nil {
		return dst, err
	}
	// The capacity given to DecodeAll is exactly max: a frame that claims
	// or produces more stops with ErrDecoderSizeExceeded.
	start := len(dst)
	dst = slices.Grow(dst, max)
	out, err := zd.DecodeAll(body, dst[start:start:start+max])
	putDecoder(zd)
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return dst[:start], fmt.Errorf("zstd frame decodes past %d bytes: %w: %w", max, ErrTooLarge, err)
	case err != nil:
		return dst[:start], fmt.Errorf("zstd frame: %w: %w", ErrCorrupt, err)
	case len(out) > max:
		return dst[:start], fmt.Errorf("zstd frame decodes to %d bytes, above %d: %w", len(out), max, ErrTooLarge)
	}
	dst = dst[:start+len(out)]
	if len(out) > 0 && &out[0] != &dst[start] {
		copy(dst[start:], out) // DecodeAll reallocated; not expected with a capped slice
	}
	return dst, nil
}

// byteReader is what stream decoding reads chunks from.
type byteReader interface {
	io.Reader
	io.ByteReader
}
