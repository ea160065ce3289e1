package wire

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/quic-go/quic-go/quicvarint"
)

// header builds a frame header declaring the given type and body length.
func header(t FrameType, bodyLen uint64) []byte {
	return quicvarint.Append(quicvarint.Append(nil, uint64(t)), bodyLen)
}

// countingReader counts how many bytes were read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestOversizeFrameRejectedBeforeBody(t *testing.T) {
	cases := []struct {
		name string
		typ  FrameType
		len  uint64
		max  int
	}{
		{"data past MaxFrameSize", FrameData, MaxFrameSize, 0},
		{"data at 2^62-1", FrameData, quicvarint.Max, 0},
		{"ack past its own cap", FrameAck, 1 << 20, 0},
		{"ping past the small-frame cap", FramePing, smallFrameBody + 1, 0},
		{"probe train past a datagram", FrameProbeTrain, MaxProbeFrameSize, 0},
		{"data past the caller's max", FrameData, 70_000, 64 << 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := header(c.typ, c.len)
			// Parse: the header alone is enough to refuse.
			if _, _, err := Parse(h); c.max == 0 && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("Parse = %v, want ErrFrameTooLarge", err)
			}
			// ReadFrame: refuses after reading only the header, although
			// the stream would go on supplying bytes.
			cr := &countingReader{r: io.MultiReader(bytes.NewReader(h), zeroReader{})}
			_, err := ReadFrame(cr, c.max)
			if !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("ReadFrame = %v, want ErrFrameTooLarge", err)
			}
			if cr.n != len(h) {
				t.Fatalf("ReadFrame read %d bytes, want only the %d-byte header", cr.n, len(h))
			}
			if CodeOf(err) != CodeTooLarge {
				t.Fatalf("CodeOf = %s, want too-large", CodeOf(err))
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestReadFrameDoesNotAllocateDeclaredLength(t *testing.T) {
	// Each header declares a body just under the type's limit but the
	// stream ends right after it: a reader that trusted the length would
	// allocate it before finding out.
	hs := [][]byte{header(FrameData, MaxFrameSize-16), header(FrameSummary, uint64(FrameSummary.MaxBody()))}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 10 {
		for _, h := range hs {
			if _, err := ReadFrame(bytes.NewReader(h), 1<<10); !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("ReadFrame with max 1 KiB = %v, want ErrFrameTooLarge", err)
			}
		}
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 256<<10 {
		t.Fatalf("refusing 20 oversize frames allocated %d bytes", got)
	}
}

func TestMaximalDataFrameFits(t *testing.T) {
	f := &Data{ID: edgesync.OpID{1}, Offset: quicvarint.Max, Chunk: make([]byte, MaxChunkSize)}
	b, err := f.Append(nil)
	if err != nil {
		t.Fatalf("append maximal data frame: %v", err)
	}
	if len(b) > MaxFrameSize {
		t.Fatalf("maximal data frame is %d bytes, MaxFrameSize %d", len(b), MaxFrameSize)
	}
	got, err := ReadFrame(bytes.NewReader(b), MaxFrameSize)
	if err != nil {
		t.Fatalf("read maximal data frame: %v", err)
	}
	if d := got.(*Data); len(d.Chunk) != MaxChunkSize || d.Offset != quicvarint.Max {
		t.Fatalf("read back chunk of %d bytes at %d", len(d.Chunk), d.Offset)
	}
	if _, err := ReadFrame(bytes.NewReader(b), len(b)-1); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("ReadFrame with max one below the frame: %v, want ErrFrameTooLarge", err)
	}
}

func TestUnknownFrameType(t *testing.T) {
	for _, typ := range []uint64{0, uint64(numFrameTypes), 0x3f, 0x4000, quicvarint.Max} {
		b := append(quicvarint.Append(nil, typ), 0)
		if _, _, err := Parse(b); !errors.Is(err, ErrUnknownFrame) {
			t.Fatalf("Parse of type %#x = %v, want ErrUnknownFrame", typ, err)
		}
		if _, err := ReadFrame(bytes.NewReader(b), 0); !errors.Is(err, ErrUnknownFrame) {
			t.Fatalf("ReadFrame of type %#x = %v, want ErrUnknownFrame", typ, err)
		}
	}
}

func TestAppendRefusesOverLimitFields(t *testing.T) {
	long := func(n int) string { return strings.Repeat("k", n) }
	cases := []struct {
		name string
		f    Frame
		want error
	}{
		{"key", &OpHeader{Key: long(MaxKeyLen + 1), Kind: edgesync.EventOp, ChunkSize: 1}, ErrFieldTooLong},
		{"endpoint", &OpHeader{Endpoint: long(MaxNameLen + 1), Kind: edgesync.EventOp, ChunkSize: 1}, ErrFieldTooLong},
		{"priority", &OpHeader{Priority: edgesync.NumPriorities, Kind: edgesync.EventOp, ChunkSize: 1}, ErrInvalidField},
		{"kind", &OpHeader{ChunkSize: 1}, ErrInvalidField},
		{"chunk size", &OpHeader{Kind: edgesync.StateOp, ChunkSize: MaxChunkSize + 1}, ErrInvalidField},
		{"base hash without flag", &OpHeader{Kind: edgesync.StateOp, ChunkSize: 1, BaseHash: [32]byte{1}}, ErrInvalidField},
		{"lane transfer without flag", &OpHeader{Kind: edgesync.StateOp, ChunkSize: 1, LaneTransfer: 3}, ErrInvalidField},
		{"chunk", &Data{Chunk: make([]byte, MaxChunkSize+1)}, ErrFieldTooLong},
		{"varint overflow", &Commit{Bytes: quicvarint.Max + 1}, ErrInvalidField},
		{"agent", &Hello{Versions: []uint32{1}, Agent: long(MaxNameLen + 1)}, ErrFieldTooLong},
		{"no versions", &Hello{}, ErrInvalidField},
		{"too many versions", &Hello{Versions: make([]uint32, MaxVersions+1)}, ErrFieldTooLong},
		{"unsupported version", &Welcome{Version: 2}, ErrUnsupportedVersion},
		{"ack ids", &Ack{IDs: make([]edgesync.OpID, MaxAckIDs+1)}, ErrFieldTooLong},
		{"nack ok", &Nack{}, ErrInvalidField},
		{"nack message", &Nack{Code: CodeBusy, Msg: long(MaxMessageLen + 1)}, ErrFieldTooLong},
		{"summary bytes", &Summary{Producer: make([]byte, MaxSummaryBytes+1)}, ErrFieldTooLong},
		{"negative rtt", &Ping{Sent: -1}, ErrInvalidField},
		{"train index", &ProbeTrain{Index: 3, Count: 3}, ErrInvalidField},
		{"train padding", &ProbeTrain{Count: 1, Pad: MaxProbeFrameSize}, ErrFrameTooLarge},
		{"report last before first", &ProbeReport{First: 2, Last: 1}, ErrInvalidField},
		{"request size", &ProbeRequest{Count: 2, Size: MaxProbeFrameSize + 1}, ErrInvalidField},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			prefix := []byte("keep")
			b, err := c.f.Append(prefix)
			if !errors.Is(err, c.want) {
				t.Fatalf("Append = %v, want %v", err, c.want)
			}
			if string(b) != "keep" {
				t.Fatalf("failed Append returned %q, want the input unchanged", b)
			}
		})
	}
}

// body returns a valid encoding of f with its body replaced.
func withBody(f Frame, body []byte) []byte {
	return append(header(f.Type(), uint64(len(body))), body...)
}

func TestParseRefusesBadBodies(t *testing.T) {
	ok, _ := (&Commit{ID: edgesync.OpID{7}}).Append(nil)
	okBody := ok[2:]
	bigKey := append(append(make([]byte, 20), quicvarint.Append(nil, MaxKeyLen+1)...), make([]byte, MaxKeyLen+1)...)
	bigKey[18] = byte(edgesync.EventOp)
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"trailing byte in body", withBody(&Commit{}, append(bytes.Clone(okBody), 0)), ErrMalformedFrame},
		{"field past body", withBody(&Commit{}, okBody[:len(okBody)-1]), ErrMalformedFrame},
		{"welcome version 2", withBody(&Welcome{}, []byte{2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}), ErrUnsupportedVersion},
		{"hello no versions", withBody(&Hello{}, []byte{0, 0, 0, 0, 0, 0}), ErrInvalidField},
		{"op header key too long", withBody(&OpHeader{}, bigKey), ErrFieldTooLong},
		{"ack zero ids", withBody(&Ack{}, []byte{0}), ErrInvalidField},
		{"ack too many ids", withBody(&Ack{}, quicvarint.Append(nil, MaxAckIDs+1)), ErrFieldTooLong},
		{"hello too many versions", withBody(&Hello{}, []byte{MaxVersions + 1, 1, 1, 1, 1, 1}), ErrFieldTooLong},
		{"ack ids past body", withBody(&Ack{}, []byte{2, 1, 2, 3}), ErrMalformedFrame},
		{"nack ok", withBody(&Nack{}, append(make([]byte, 16), 0, 0)), ErrInvalidField},
		{"error code past 16 bits", withBody(&Error{}, append(quicvarint.Append(nil, 1<<16), 0)), ErrInvalidField},
		{"flag 2", withBody(&ResumeAnswer{}, append(make([]byte, 16), 0, 0, 2)), ErrInvalidField},
		{"train index past count", withBody(&ProbeTrain{}, []byte{0, 5, 5, 0, 0}), ErrInvalidField},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := Parse(c.b)
			if !errors.Is(err, c.want) {
				t.Fatalf("Parse = %v, want %v", err, c.want)
			}
			if CodeOf(err) == CodeInternal {
				t.Fatalf("a parse error maps to internal: %v", err)
			}
		})
	}
}

func TestNegotiate(t *testing.T) {
	if v, err := Negotiate([]uint32{9, ProtocolVersion, 7}); err != nil || v != ProtocolVersion {
		t.Fatalf("Negotiate = %d, %v", v, err)
	}
	_, err := Negotiate([]uint32{2, 3})
	if !errors.Is(err, ErrUnsupportedVersion) || CodeOf(err) != CodeVersion {
		t.Fatalf("Negotiate without common version = %v (code %s)", err, CodeOf(err))
	}
}

func TestProbeTrainPadTo(t *testing.T) {
	for size := 5; size <= MaxProbeFrameSize; size++ {
		f := &ProbeTrain{TrainID: 1 << 40, Index: 100, Count: 200, Sent: 1 << 35}
		if err := f.PadTo(size); err != nil {
			if size >= 30 {
				t.Fatalf("PadTo(%d): %v", size, err)
			}
			continue
		}
		b, err := f.Append(nil)
		if err != nil {
			t.Fatalf("append padded to %d: %v", size, err)
		}
		if len(b) > size || len(b) < size-2 {
			t.Fatalf("PadTo(%d) gave a %d-byte frame", size, len(b))
		}
	}
	if err := (&ProbeTrain{Count: 1}).PadTo(MaxProbeFrameSize + 1); !errors.Is(err, ErrInvalidField) {
		t.Fatalf("PadTo past the limit = %v", err)
	}
}

// TestReadFrameAllocatesAsBytesArrive declares the largest DATA body and
// sends 64 KiB of it before the stream fails: the body is allocated as
// its bytes arrive, not at the declared length, so a peer that declares
// much and sends little costs what it sent.
func TestReadFrameAllocatesAsBytesArrive(t *testing.T) {
	h := header(FrameData, uint64(FrameData.MaxBody()))
	sent := append(h, make([]byte, 64<<10)...)
	for _, tc := range []struct {
		name string
		read func(io.Reader) error
	}{
		{"ReadFrame", func(r io.Reader) error { _, err := ReadFrame(r, 0); return err }},
		{"Reader", func(r io.Reader) error { _, err := NewReader(r, 0).ReadFrame(); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			const n = 10
			for range n {
				if err := tc.read(bytes.NewReader(sent)); !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("read of a cut frame: %v, want io.ErrUnexpectedEOF", err)
				}
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 512<<10 {
				t.Fatalf("a frame declaring %d bytes of which 64 KiB came allocated %d bytes", FrameData.MaxBody(), per)
			}
		})
	}
}

// TestReadFrameOfRefusesBeforeTheBody reads a DATA header where only
// OP_HEADER may come: the frame is refused after its header, although the
// stream would supply its whole body.
func TestReadFrameOfRefusesBeforeTheBody(t *testing.T) {
	h := header(FrameData, uint64(FrameData.MaxBody()))
	cr := &countingReader{r: io.MultiReader(bytes.NewReader(h), zeroReader{})}
	_, err := NewReader(cr, 0).ReadFrameOf(FrameOpHeader, FrameSummary)
	if !errors.Is(err, ErrUnexpectedFrame) || CodeOf(err) != CodeBadRequest {
		t.Fatalf("ReadFrameOf = %v (code %s), want ErrUnexpectedFrame, bad-request", err, CodeOf(err))
	}
	if !strings.Contains(err.Error(), "DATA where OP_HEADER or SUMMARY may come") {
		t.Fatalf("error %q does not say what came and what may", err)
	}
	if cr.n != len(h) {
		t.Fatalf("ReadFrameOf read %d bytes, want only the %d-byte header", cr.n, len(h))
	}
	f, err := NewReader(bytes.NewReader(mustAppend(t, &Commit{Chunks: 3})), 0).ReadFrameOf(FrameData, FrameCommit)
	if err != nil || f.(*Commit).Chunks != 3 {
		t.Fatalf("ReadFrameOf of an expected frame: %v, %v", f, err)
	}
}

// testBudget is a Budget with a limit.
type testBudget struct{ used, limit int }

var errOverBudget = errors.New("over budget")

func (b *testBudget) Reserve(n int) error {
	if b.used+n > b.limit {
		return errOverBudget
	}
	b.used += n
	return nil
}

func (b *testBudget) Release(n int) { b.used -= n }

// TestReaderBudget reads frames with a Reader whose buffer is reserved in
// a budget: growth is reserved before it happens, a growth over the
// budget ends the read, and Free gives everything back.
func TestReaderBudget(t *testing.T) {
	big := mustAppend(t, &Data{Chunk: make([]byte, 300<<10)})
	b := &testBudget{limit: 1 << 20}
	fr := NewReader(bytes.NewReader(append(big, big...)), 0, WithBudget(b))
	for i := range 2 {
		if _, err := fr.ReadFrame(); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if b.used != cap(fr.buf) || b.used < len(big)-16 {
			t.Fatalf("frame %d: %d bytes reserved for a buffer of %d", i, b.used, cap(fr.buf))
		}
	}
	fr.Free()
	if b.used != 0 {
		t.Fatalf("%d bytes reserved after Free", b.used)
	}

	b = &testBudget{limit: 200 << 10}
	fr = NewReader(bytes.NewReader(big), 0, WithBudget(b))
	if _, err := fr.ReadFrame(); !errors.Is(err, errOverBudget) {
		t.Fatalf("a frame over the budget: %v, want the budget's error", err)
	}
	if b.used > b.limit || b.used != cap(fr.buf) {
		t.Fatalf("%d bytes reserved (limit %d) for a buffer of %d", b.used, b.limit, cap(fr.buf))
	}
	fr.Free()
	if b.used != 0 {
		t.Fatalf("%d bytes reserved after Free", b.used)
	}
}

func mustAppend(t *testing.T, f Frame) []byte {
	t.Helper()
	b, err := f.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
