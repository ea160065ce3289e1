package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/quic-go/quic-go/quicvarint"
)

// Parse parses one frame from the start of b and returns it with the number
// of bytes it used. A b that ends inside the frame (including an empty b)
// gives io.ErrUnexpectedEOF; an unknown type gives ErrUnknownFrame and a
// declared length over the type's limit gives ErrFrameTooLarge, both before
// the body is looked at. Byte-slice fields of the result (Data.Chunk,
// Summary.Producer) alias b.
func Parse(b []byte) (Frame, int, error) {
	t, bodyLen, hdr, err := parseHeader(b, 0)
	if err != nil {
		return nil, 0, err
	}
	if len(b)-hdr < bodyLen {
		return nil, 0, io.ErrUnexpectedEOF
	}
	f, err := parseBody(t, b[hdr:hdr+bodyLen])
	if err != nil {
		return nil, 0, err
	}
	return f, hdr + bodyLen, nil
}

// parseHeader reads the type and length varints and checks them against the
// type's limit and against max (the largest whole frame; 0 for no extra
// limit). It returns the header's length.
func parseHeader(b []byte, max int) (FrameType, int, int, error) {
	tv, n1, err := quicvarint.Parse(b)
	if err != nil {
		return 0, 0, 0, io.ErrUnexpectedEOF
	}
	t := FrameType(tv)
	if !t.Known() {
		return 0, 0, 0, fmt.Errorf("parse frame: type %s: %w", t, ErrUnknownFrame)
	}
	lv, n2, err := quicvarint.Parse(b[n1:])
	if err != nil {
		return 0, 0, 0, io.ErrUnexpectedEOF
	}
	if err := checkLength(t, lv, n1+n2, max); err != nil {
		return 0, 0, 0, err
	}
	return t, int(lv), n1 + n2, nil
}

func checkLength(t FrameType, bodyLen uint64, hdr, max int) error {
	if limit := t.MaxBody(); bodyLen > uint64(limit) {
		return fmt.Errorf("parse frame: %s declares %d body bytes, limit %d: %w", t, bodyLen, limit, ErrFrameTooLarge)
	}
	if max > 0 && bodyLen+uint64(hdr) > uint64(max) {
		return fmt.Errorf("parse frame: %s of %d bytes exceeds the maximum %d: %w", t, bodyLen+uint64(hdr), max, ErrFrameTooLarge)
	}
	return nil
}

func parseBody(t FrameType, body []byte) (Frame, error) {
	// A switch rather than a table of functions keeps r on the stack: an
	// indirect call would make it escape, one allocation per frame.
	r := &bodyReader{t: t, b: body}
	var f Frame
	var err error
	switch t {
	case FrameHello:
		f, err = parseHello(r)
	case FrameWelcome:
		f, err = parseWelcome(r)
	case FrameOpHeader:
		f, err = parseOpHeader(r)
	case FrameData:
		f, err = parseData(r)
	case FrameCommit:
		f, err = parseCommit(r)
	case FrameAck:
		f, err = parseAck(r)
	case FrameNack:
		f, err = parseNack(r)
	case FrameResumeQuery:
		f, err = parseResumeQuery(r)
	case FrameResumeAnswer:
		f, err = parseResumeAnswer(r)
	case FrameSummary:
		f, err = parseSummary(r)
	case FrameError:
		f, err = parseError(r)
	case FramePing:
		f, err = parsePing(r)
	case FramePong:
		f, err = parsePong(r)
	case FrameProbeTrain:
		f, err = parseProbeTrain(r)
	case FrameProbeReport:
		f, err = parseProbeReport(r)
	case FrameProbeRequest:
		f, err = parseProbeRequest(r)
	default:
		return nil, fmt.Errorf("parse frame: type %s: %w", t, ErrUnknownFrame)
	}
	if err == nil {
		err = r.done()
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// ReadFrame reads one frame from a stream. max bounds the whole frame (0 or
// anything above MaxFrameSize means MaxFrameSize); the declared length is
// checked against it and against the type's limit before a byte of the
// body is read, and the body is allocated as its bytes arrive, so a frame
// that declares much and sends little costs what it sent. A stream that
// ends cleanly between frames gives io.EOF; one that ends inside a frame
// gives io.ErrUnexpectedEOF. ReadFrame reads the header a byte at a time
// if r is not an io.ByteReader, and never reads past the frame.
func ReadFrame(r io.Reader, max int) (Frame, error) {
	f, _, err := readFrame(r, byteReaderFor(r), max, nil, nil, nil)
	return f, err
}

// Budget accounts for the memory a Reader holds for frame bodies.
type Budget interface {
	// Reserve is called before the Reader's buffer grows by n bytes; its
	// error ends the read before anything is allocated.
	Reserve(n int) error
	// Release gives back n bytes reserved before (Reader.Free).
	Release(n int)
}

// Reader reads frames from one stream into a buffer it reuses, saving an
// allocation per frame: byte-slice fields of a frame (Data.Chunk,
// Summary.Producer) are valid only until the next ReadFrame call. The
// buffer grows as bodies arrive, to the largest frame read, at most max
// bytes; with a Budget (WithBudget) each growth is reserved in it first,
// and Free gives the buffer and its reservation back.
type Reader struct {
	r      io.Reader
	br     io.ByteReader
	max    int
	buf    []byte
	budget Budget
}

// ReaderOption configures a Reader.
type ReaderOption func(*Reader)

// WithBudget makes a Reader reserve its buffer's memory in b before it
// grows the buffer.
func WithBudget(b Budget) ReaderOption { return func(fr *Reader) { fr.budget = b } }

// NewReader returns a Reader of frames of at most max bytes from r (0 or
// anything above MaxFrameSize means MaxFrameSize).
func NewReader(r io.Reader, max int, opts ...ReaderOption) *Reader {
	fr := &Reader{r: r, br: byteReaderFor(r), max: max}
	for _, o := range opts {
		o(fr)
	}
	return fr
}

// ReadFrame reads the next frame, with the same checks and errors as the
// package-level ReadFrame.
func (fr *Reader) ReadFrame() (Frame, error) {
	f, buf, err := readFrame(fr.r, fr.br, fr.max, fr.buf, fr.budget, nil)
	fr.buf = buf
	return f, err
}

// ReadFrameOf reads the next frame as ReadFrame does if its type is one of
// types; a frame of another type is refused after its header, before a
// byte of its body is read or allocated, with an error wrapping
// ErrUnexpectedFrame. It is how a reader that knows what may come next
// (an op stream in the middle of an op) keeps a peer from making it read
// and hold frames that could only be refused.
func (fr *Reader) ReadFrameOf(types ...FrameType) (Frame, error) {
	f, buf, err := readFrame(fr.r, fr.br, fr.max, fr.buf, fr.budget, types)
	fr.buf = buf
	return f, err
}

// Free drops the Reader's buffer and releases its reservation in the
// Budget; the next read starts a new buffer.
func (fr *Reader) Free() {
	if fr.budget != nil && cap(fr.buf) > 0 {
		fr.budget.Release(cap(fr.buf))
	}
	fr.buf = nil
}

func byteReaderFor(r io.Reader) io.ByteReader {
	if br, ok := r.(io.ByteReader); ok {
		return br
	}
	return &byteReader{r: r}
}

// readFrame reads one frame, reading its body into buf if buf has room,
// else into a buffer grown as the body arrives (reserved in budget, when
// not nil); it returns buf (possibly grown) for reuse. A frame whose type
// is not in want (when want is not nil) is refused after its header.
func readFrame(r io.Reader, br io.ByteReader, max int, buf []byte, budget Budget, want []FrameType) (Frame, []byte, error) {
	if max <= 0 || max > MaxFrameSize {
		max = MaxFrameSize
	}
	t, n, err := readHeader(br, max)
	if err != nil {
		return nil, buf, err
	}
	if want != nil && !slices.Contains(want, t) {
		return nil, buf, fmt.Errorf("read frame: %s where %s may come: %w", t, typeList(want), ErrUnexpectedFrame)
	}
	buf, err = readBody(r, buf, n, budget)
	if err != nil {
		if err = eofToUnexpected(err); err != io.ErrUnexpectedEOF {
			err = fmt.Errorf("read %s frame: %w", t, err)
		}
		return nil, buf, err
	}
	f, err := parseBody(t, buf)
	return f, buf, err
}

// readHeader reads a frame's type and length and checks them against the
// type's limit and max; it returns the type and the body's length.
func readHeader(br io.ByteReader, max int) (FrameType, int, error) {
	var hdr [16]byte
	have := 1 // bytes of hdr read
	if ub, ok := br.(*byteReader); ok {
		// From a stream read unbuffered (a QUIC stream) every byte costs
		// a Read: a frame has at least two bytes of header, its type's
		// first and its length's first, so take both in one. (Into ub's
		// own bytes: hdr given to a Read would escape, an allocation per
		// frame.)
		n, err := ub.readFull(ub.two[:])
		if err != nil {
			if n == 0 && err == io.EOF {
				return 0, 0, io.EOF // clean end between frames
			}
			return 0, 0, headerErr(err)
		}
		hdr[0], hdr[1] = ub.two[0], ub.two[1]
		have = 2
	} else {
		first, err := br.ReadByte()
		if err != nil {
			if err == io.EOF {
				return 0, 0, io.EOF // clean end between frames
			}
			return 0, 0, headerErr(err)
		}
		hdr[0] = first
	}
	n1 := 1 << (hdr[0] >> 6)
	if n1 > have {
		if err := readBytes(br, hdr[have:n1]); err != nil {
			return 0, 0, err
		}
	}
	tv, _, _ := quicvarint.Parse(hdr[:n1])
	t := FrameType(tv)
	if !t.Known() {
		return 0, 0, fmt.Errorf("read frame: type %s: %w", t, ErrUnknownFrame)
	}
	if have <= n1 { // the length's first byte is not read yet
		if err := readBytes(br, hdr[n1:n1+1]); err != nil {
			return 0, 0, err
		}
	}
	n2 := 1 << (hdr[n1] >> 6)
	if err := readBytes(br, hdr[n1+1:n1+n2]); err != nil {
		return 0, 0, err
	}
	lv, _, _ := quicvarint.Parse(hdr[n1 : n1+n2])
	if err := checkLength(t, lv, n1+n2, max); err != nil {
		return 0, 0, err
	}
	return t, int(lv), nil
}

// firstBodyStep is the most of a body read before more of it has arrived:
// a buffer that must grow starts at this size and doubles, up to the
// declared length, as the body fills it.
const firstBodyStep = 64 << 10

// readBody reads n body bytes into buf if it has room; otherwise it grows
// buf (reserving each growth in budget, if not nil) only as the bytes
// arrive. It returns buf, grown or not, with what was read.
func readBody(r io.Reader, buf []byte, n int, budget Budget) ([]byte, error) {
	if cap(buf) >= n {
		buf = buf[:n]
		_, err := io.ReadFull(r, buf)
		return buf, err
	}
	buf = buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			grown := min(n, max(2*cap(buf), firstBodyStep))
			if budget != nil {
				if err := budget.Reserve(grown - cap(buf)); err != nil {
					return buf, err
				}
			}
			nb := make([]byte, len(buf), grown)
			copy(nb, buf)
			buf = nb
		}
		k, err := io.ReadFull(r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// typeList names frame types for an error: "OP_HEADER, SUMMARY or RESUME_QUERY".
func typeList(ts []FrameType) string {
	var b strings.Builder
	for i, t := range ts {
		switch {
		case i == 0:
		case i == len(ts)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		b.WriteString(t.String())
	}
	return b.String()
}

func readBytes(br io.ByteReader, dst []byte) error {
	for i := range dst {
		c, err := br.ReadByte()
		if err != nil {
			return headerErr(err)
		}
		dst[i] = c
	}
	return nil
}

// headerErr is the error of a stream that fails inside a frame's header.
func headerErr(err error) error {
	if err = eofToUnexpected(err); err == io.ErrUnexpectedEOF {
		return err
	}
	return fmt.Errorf("read frame: %w", err)
}

// eofToUnexpected turns the end of a stream inside a frame into
// io.ErrUnexpectedEOF.
func eofToUnexpected(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// byteReader adapts an io.Reader to io.ByteReader without buffering, so no
// byte past the frame header is consumed.
type byteReader struct {
	r   io.Reader
	buf [1]byte
	two [2]byte // readHeader's first two bytes
}

func (b *byteReader) ReadByte() (byte, error) {
	for range 64 { // a Reader may return 0, nil; give up after a few tries
		n, err := b.r.Read(b.buf[:])
		if n == 1 {
			return b.buf[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
	return 0, io.ErrNoProgress
}

// readFull reads len(p) bytes as io.ReadFull does, giving up as ReadByte
// does on a Reader that returns nothing many times over.
func (b *byteReader) readFull(p []byte) (int, error) {
	n, empty := 0, 0
	for n < len(p) {
		k, err := b.r.Read(p[n:])
		n += k
		if n == len(p) {
			return n, nil
		}
		if err != nil {
			if err == io.EOF && n > 0 {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		if k == 0 {
			if empty++; empty == 64 {
				return n, io.ErrNoProgress
			}
		}
	}
	return n, nil
}

var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// WriteFrame encodes f and writes it to w in one Write call.
func WriteFrame(w io.Writer, f Frame) error {
	bp := writeBufs.Get().(*[]byte)
	b, err := f.Append((*bp)[:0])
	if err == nil {
		_, err = w.Write(b)
		if err != nil {
			err = fmt.Errorf("write %s frame: %w", f.Type(), err)
		}
	}
	if cap(b) <= 64<<10 { // don't pin Data-sized buffers in the pool
		*bp = b[:0]
		writeBufs.Put(bp)
	}
	return err
}

// appendHeader checks the body length against the type's limit and appends
// the frame's type and body length.
func appendHeader(b []byte, t FrameType, bodyLen int) ([]byte, error) {
	if limit := t.MaxBody(); bodyLen > limit {
		return b, fmt.Errorf("append %s: body of %d bytes exceeds the limit %d: %w", t, bodyLen, limit, ErrFrameTooLarge)
	}
	return quicvarint.Append(quicvarint.Append(b, uint64(t)), uint64(bodyLen)), nil
}

// frameLen is the length of a frame with the given body length.
func frameLen(t FrameType, bodyLen int) int {
	return quicvarint.Len(uint64(t)) + varintLen(uint64(bodyLen)) + bodyLen
}

// varintLen is quicvarint.Len without the panic for values past 2^62-1
// (Append refuses those; Len must not crash on them).
func varintLen(v uint64) int {
	if v > quicvarint.Max {
		return 8
	}
	return quicvarint.Len(v)
}

// bodyReader reads the fields of one frame body. The first failure sticks:
// later reads return zero values and done reports the first error.
type bodyReader struct {
	t   FrameType
	b   []byte
	err error
}

func (r *bodyReader) fail(sentinel error, field, format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("parse %s: %s: %s: %w", r.t, field, fmt.Sprintf(format, args...), sentinel)
	}
}

func (r *bodyReader) short(field string) {
	r.fail(ErrMalformedFrame, field, "runs past the end of the frame body")
}

func (r *bodyReader) varint(field string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n, err := quicvarint.Parse(r.b)
	if err != nil {
		r.short(field)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// uintN reads a varint that must fit in bits bits.
func (r *bodyReader) uintN(field string, bits int) uint64 {
	v := r.varint(field)
	if bits < 64 && v>>bits != 0 {
		r.fail(ErrInvalidField, field, "%d does not fit in %d bits", v, bits)
		return 0
	}
	return v
}

func (r *bodyReader) u8(field string) uint8 {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 {
		r.short(field)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *bodyReader) fixed(field string, dst []byte) {
	if r.err != nil {
		return
	}
	if len(r.b) < len(dst) {
		r.short(field)
		return
	}
	copy(dst, r.b)
	r.b = r.b[len(dst):]
}

// bytes reads a varint length and that many bytes, aliasing the body.
func (r *bodyReader) bytes(field string, max int) []byte {
	n := r.varint(field + " length")
	if r.err != nil {
		return nil
	}
	if n > uint64(max) {
		r.fail(ErrFieldTooLong, field, "%d bytes, limit %d", n, max)
		return nil
	}
	if uint64(len(r.b)) < n {
		r.short(field)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// count reads the number of items in a list that holds 1 to max of them.
func (r *bodyReader) count(field string, max int) uint64 {
	n := r.varint(field)
	if r.err == nil && n == 0 {
		r.fail(ErrInvalidField, field, "none")
	}
	if r.err == nil && n > uint64(max) {
		r.fail(ErrFieldTooLong, field, "%d, limit %d", n, max)
	}
	return n
}

func (r *bodyReader) string(field string, max int) string {
	return string(r.bytes(field, max))
}

// rest returns the remaining body bytes, aliasing them, or nil if none.
func (r *bodyReader) rest() []byte {
	if r.err != nil || len(r.b) == 0 {
		return nil
	}
	v := r.b[:len(r.b):len(r.b)]
	r.b = r.b[len(r.b):]
	return v
}

func (r *bodyReader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(ErrMalformedFrame, "body", "%d bytes left after the last field", len(r.b))
	}
	return r.err
}

// checker validates fields before Append writes anything. The first failure
// sticks.
type checker struct {
	t   FrameType
	err error
}

func (c *checker) fail(sentinel error, field, format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("append %s: %s: %s: %w", c.t, field, fmt.Sprintf(format, args...), sentinel)
	}
}

// header appends the frame's type and body length if every field checked
// out; otherwise it returns the first field's failure.
func (c *checker) header(b []byte, bodyLen int) ([]byte, error) {
	if c.err != nil {
		return b, c.err
	}
	return appendHeader(b, c.t, bodyLen)
}

func (c *checker) varint(field string, v uint64) {
	if v > quicvarint.Max {
		c.fail(ErrInvalidField, field, "%d exceeds 2^62-1", v)
	}
}

func (c *checker) length(field string, n, max int) {
	if n > max {
		c.fail(ErrFieldTooLong, field, "%d bytes, limit %d", n, max)
	}
}

func (c *checker) valid(field string, ok bool, v any) {
	if !ok {
		c.fail(ErrInvalidField, field, "%v out of range", v)
	}
}

func appendBytes(b, v []byte) []byte {
	return append(quicvarint.Append(b, uint64(len(v))), v...)
}

func appendString(b []byte, v string) []byte {
	return append(quicvarint.Append(b, uint64(len(v))), v...)
}

func bytesLen(n int) int { return varintLen(uint64(n)) + n }

func appendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func (r *bodyReader) uint64(field string) uint64 {
	var v [8]byte
	r.fixed(field, v[:])
	return binary.BigEndian.Uint64(v[:])
}

// flag reads a byte that must be 0 or 1.
func (r *bodyReader) flag(field string) bool {
	v := r.u8(field)
	if v > 1 {
		r.fail(ErrInvalidField, field, "%d is not 0 or 1", v)
	}
	return v == 1
}

func appendFlag(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}
