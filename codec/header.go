package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// Size limits. A header or chunk outside them is refused before any
// decoding work.
const (
	// MinChunkSize is the smallest chunk size a header may declare.
	MinChunkSize = 1 << 10
	// MaxChunkSize is the largest chunk size (fiber uses 16 MiB, see
	// docs/design.md#sync-parameters); it is also the zstd decoders' window
	// and memory cap.
	MaxChunkSize = 16 << 20
	// MaxDeltaMargin is the largest margin of base bytes taken on each side
	// of a block's own offset as its base region.
	MaxDeltaMargin = 16 << 20
	// MaxDeltaRegion is the largest base region one delta chunk may name.
	MaxDeltaRegion = MaxChunkSize + 2*MaxDeltaMargin

	headerVersion = 2
)

// DefaultDeltaMargin is the margin chosen by BenchmarkDeltaMargin: 8 KiB of
// base on each side of a chunk's own offset. Insertions or deletions of up to
// that much before a chunk still find its old bytes (larger ones are found
// by the encoder's realignment); a wider region costs indexing CPU and lets
// long copies come from the wrong record (JSON records, 1 MiB chunks: margin
// 0 14.4 KB, 4 KiB 14.2 KB, 16 KiB 14.3 KB, 256 KiB 16.3 KB, 4 MiB 17.0 KB;
// 64 KiB chunks: margin 0 25.3 KB, 8 KiB 20.8 KB, 4-256 KiB 21.6 KB, since
// any margin but regionMargin records every block's region).
func DefaultDeltaMargin(chunkSize int) int {
	return min(8<<10, chunkSize)
}

// Limits bound what a decoder accepts.
type Limits struct {
	// MaxSize is the largest payload a header may declare.
	MaxSize int64
	// MaxChunkSize is the largest chunk size a header may declare (at most
	// the package's MaxChunkSize).
	MaxChunkSize int
}

// DefaultLimits accepts payloads up to 4 GiB in chunks up to MaxChunkSize.
func DefaultLimits() Limits { return Limits{MaxSize: 4 << 30, MaxChunkSize: MaxChunkSize} }

// Header describes an encoded payload: how it was encoded, its plain size and
// SHA-256, and for deltas the size and SHA-256 of the base. It holds every
// setting the encoder used, so a resumed transfer re-encodes chunk k to the
// same bytes from the header alone.
type Header struct {
	// Mode is the requested mode; each chunk records the mode it actually
	// used (a delta chunk may fall back to zstd or full).
	Mode Mode
	// Level is the compression level the sender chose.
	Level Level
	// ChunkSize is the plain bytes per chunk; the last chunk may be shorter.
	ChunkSize int
	// DeltaMargin is how many base bytes each side of a block's offset a
	// delta block may copy from (delta modes only).
	DeltaMargin int
	// Size is the plain payload's length.
	Size int64
	// Hash is the plain payload's SHA-256.
	Hash Hash
	// BaseSize is the base's length (delta modes only).
	BaseSize int64
	// BaseHash is the base's SHA-256 (delta modes only).
	BaseHash Hash
}

// NewHeader returns a validated header for a payload of the given size and
// hash; for delta modes base must be given and its hash is computed if
// unknown. DeltaMargin is set to DefaultDeltaMargin(chunkSize).
func NewHeader(mode Mode, level Level, chunkSize int, size int64, hash Hash, base *Base) (Header, error) {
	h := Header{Mode: mode, Level: level, ChunkSize: chunkSize, Size: size, Hash: hash}
	if mode.IsDelta() {
		if base == nil {
			return Header{}, fmt.Errorf("new header: %w", ErrNoBase)
		}
		bh, err := base.hash()
		if err != nil {
			return Header{}, fmt.Errorf("new header: %w", err)
		}
		h.DeltaMargin = DefaultDeltaMargin(chunkSize)
		h.BaseSize, h.BaseHash = base.Size, bh
	}
	if err := h.Validate(Limits{MaxSize: 1<<63 - 1, MaxChunkSize: MaxChunkSize}); err != nil {
		return Header{}, err
	}
	return h, nil
}

// Validate reports the first field of h that is out of range or above lim.
func (h *Header) Validate(lim Limits) error {
	switch {
	case !h.Mode.isData():
		return fmt.Errorf("header: mode %s: %w", h.Mode, ErrBadMode)
	case !h.Level.Valid():
		return fmt.Errorf("header: level %d: %w", uint8(h.Level), ErrBadLevel)
	case h.ChunkSize < MinChunkSize || h.ChunkSize > MaxChunkSize:
		return fmt.Errorf("header: chunk size %d not in [%d, %d]: %w", h.ChunkSize, MinChunkSize, MaxChunkSize, ErrBadParam)
	case h.ChunkSize > lim.MaxChunkSize:
		return fmt.Errorf("header: chunk size %d above limit %d: %w", h.ChunkSize, lim.MaxChunkSize, ErrTooLarge)
	case h.Size < 0:
		return fmt.Errorf("header: negative size %d: %w", h.Size, ErrBadParam)
	case h.Size > lim.MaxSize:
		return fmt.Errorf("header: size %d above limit %d: %w", h.Size, lim.MaxSize, ErrTooLarge)
	case h.Mode.IsDelta() && (h.DeltaMargin < 0 || h.DeltaMargin > MaxDeltaMargin):
		return fmt.Errorf("header: delta margin %d not in [0, %d]: %w", h.DeltaMargin, MaxDeltaMargin, ErrBadParam)
	case h.Mode.IsDelta() && h.BaseSize < 0:
		return fmt.Errorf("header: negative base size %d: %w", h.BaseSize, ErrBadParam)
	case !h.Mode.IsDelta() && (h.DeltaMargin != 0 || h.BaseSize != 0 || !h.BaseHash.IsZero()):
		return fmt.Errorf("header: base fields set for mode %s: %w", h.Mode, ErrBadParam)
	}
	return nil
}

// Chunks returns the number of chunks of the payload.
func (h *Header) Chunks() int64 {
	if h.ChunkSize <= 0 {
		return 0
	}
	return (h.Size + int64(h.ChunkSize) - 1) / int64(h.ChunkSize)
}

// ChunkRange returns chunk i's plain offset and length; ok is false when i is
// not a chunk of the payload.
func (h *Header) ChunkRange(i int64) (off int64, n int, ok bool) {
	if i < 0 || i >= h.Chunks() {
		return 0, 0, false
	}
	off = i * int64(h.ChunkSize)
	return off, int(min(int64(h.ChunkSize), h.Size-off)), true
}

// CheckBase verifies that base is the one the delta was made against (same
// size and SHA-256); non-delta headers accept any base. Call it before
// applying chunks; DecodeStream does.
func (h *Header) CheckBase(base *Base) error {
	if !h.Mode.IsDelta() {
		return nil
	}
	if base == nil {
		return fmt.Errorf("check base: %w", ErrNoBase)
	}
	if base.Size != h.BaseSize {
		return fmt.Errorf("check base: size %d, delta wants %d: %w", base.Size, h.BaseSize, ErrBaseMismatch)
	}
	got, err := base.hash()
	if err != nil {
		return fmt.Errorf("check base: %w", err)
	}
	if got != h.BaseHash {
		return fmt.Errorf("check base: hash %.16s…, delta wants %.16s…: %w", got, h.BaseHash, ErrBaseMismatch)
	}
	return nil
}

// Append appends h's encoding to b.
func (h *Header) Append(b []byte) ([]byte, error) {
	if err := h.Validate(Limits{MaxSize: 1<<63 - 1, MaxChunkSize: MaxChunkSize}); err != nil {
		return b, fmt.Errorf("append %w", err)
	}
	b = append(b, headerVersion, byte(h.Mode), byte(h.Level))
	b = binary.AppendUvarint(b, uint64(h.ChunkSize))
	b = binary.AppendUvarint(b, uint64(h.Size))
	b = append(b, h.Hash[:]...)
	if h.Mode.IsDelta() {
		b = binary.AppendUvarint(b, uint64(h.DeltaMargin))
		b = binary.AppendUvarint(b, uint64(h.BaseSize))
		b = append(b, h.BaseHash[:]...)
	}
	return b, nil
}

// ParseHeader parses a header from the start of b, validates it against lim
// and returns it with the number of bytes used. A truncated header gives
// io.ErrUnexpectedEOF.
func ParseHeader(b []byte, lim Limits) (Header, int, error) {
	r := bytes.NewReader(b)
	h, err := readHeader(r, lim)
	if err != nil {
		return Header{}, 0, err
	}
	return h, len(b) - r.Len(), nil
}

// ReadHeader reads a header from r (see ParseHeader).
func ReadHeader(r io.ByteReader, lim Limits) (Header, error) { return readHeader(r, lim) }

func readHeader(r io.ByteReader, lim Limits) (Header, error) {
	var h Header
	var fixed [3]byte
	if err := readFull(r, fixed[:]); err != nil {
		return Header{}, fmt.Errorf("parse header: %w", err)
	}
	if fixed[0] != headerVersion {
		return Header{}, fmt.Errorf("parse header: version %d, want %d: %w", fixed[0], headerVersion, ErrCorrupt)
	}
	h.Mode, h.Level = Mode(fixed[1]), Level(fixed[2])
	if !h.Mode.isData() {
		return Header{}, fmt.Errorf("parse header: mode %s: %w", h.Mode, ErrBadMode)
	}
	cs, size, err := readPart(r, "chunk size", MaxChunkSize, "size", h.Hash[:])
	if err != nil {
		return Header{}, fmt.Errorf("parse header: %w", err)
	}
	h.ChunkSize, h.Size = int(cs), size
	if h.Mode.IsDelta() {
		m, bs, err := readPart(r, "delta margin", MaxDeltaMargin, "base size", h.BaseHash[:])
		if err != nil {
			return Header{}, fmt.Errorf("parse header: %w", err)
		}
		h.DeltaMargin, h.BaseSize = int(m), bs
	}
	if err := h.Validate(lim); err != nil {
		return Header{}, fmt.Errorf("parse %w", err)
	}
	return h, nil
}

// readPart reads what the header and its delta part each hold, in the
// order Append writes them: a setting no larger than max (the chunk size,
// the delta margin), a size and a SHA-256 into hash. Errors name the field.
func readPart(r io.ByteReader, setting string, max uint64, size string, hash []byte) (uint64, int64, error) {
	v, err := readUvarint(r, setting, max)
	if err != nil {
		return 0, 0, err
	}
	n, err := readUvarint(r, size, 1<<63-1)
	if err != nil {
		return 0, 0, err
	}
	return v, int64(n), readFull(r, hash)
}

// readFull fills b from r; running out gives io.ErrUnexpectedEOF.
func readFull(r io.ByteReader, b []byte) error {
	if rr, ok := r.(io.Reader); ok {
		if _, err := io.ReadFull(rr, b); err != nil {
			return eofIsUnexpected(err)
		}
		return nil
	}
	for i := range b {
		c, err := r.ReadByte()
		if err != nil {
			return eofIsUnexpected(err)
		}
		b[i] = c
	}
	return nil
}

// readUvarint reads a minimally encoded uvarint no larger than max, naming
// the field in errors. Non-minimal encodings are refused so that every value
// has exactly one encoding.
func readUvarint(r io.ByteReader, field string, max uint64) (uint64, error) {
	var v uint64
	for i := 0; ; i++ {
		c, err := r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("%s: %w", field, eofIsUnexpected(err))
		}
		if i == binary.MaxVarintLen64-1 && c > 1 {
			return 0, fmt.Errorf("%s: varint overflows 64 bits: %w", field, ErrCorrupt)
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if c == 0 && i > 0 {
				return 0, fmt.Errorf("%s: varint not minimally encoded: %w", field, ErrCorrupt)
			}
			break
		}
	}
	if v > max {
		return 0, fmt.Errorf("%s %d above %d: %w", field, v, max, ErrTooLarge)
	}
	return v, nil
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Base is the version a delta is made against or applied to. Its Hash is
// filled in on first use when zero, so share a Base between goroutines only
// once its Hash is set (NewBase sets it).
type Base struct {
	// R reads the base's bytes.
	R io.ReaderAt
	// Size is the base's length.
	Size int64
	// Hash is the base's SHA-256; zero means not yet known (computed once
	// when needed).
	Hash Hash
}

// NewBase returns a Base over b with its hash computed.
func NewBase(b []byte) *Base {
	return &Base{R: bytes.NewReader(b), Size: int64(len(b)), Hash: HashBytes(b)}
}

func (b *Base) hash() (Hash, error) {
	if !b.Hash.IsZero() {
		return b.Hash, nil
	}
	h, n, err := HashOf(io.NewSectionReader(b.R, 0, b.Size))
	if err != nil {
		return Hash{}, fmt.Errorf("hash base: %w", err)
	}
	if n != b.Size {
		return Hash{}, fmt.Errorf("hash base: read %d of %d bytes: %w", n, b.Size, io.ErrUnexpectedEOF)
	}
	b.Hash = h
	return h, nil
}

// readRegion reads base[off:off+n] into buf.
func (b *Base) readRegion(buf []byte, off int64, n int) ([]byte, error) {
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	got, err := b.R.ReadAt(buf, off)
	if got == n {
		return buf, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return buf[:0], fmt.Errorf("read base [%d, %d): %w", off, off+int64(n), err)
}
