package codec

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// zeroFrame returns a zstd frame of n zero bytes; withSize says whether the
// frame header declares its content size (a streaming encoder does not).
func zeroFrame(t *testing.T, n int, withSize bool) []byte {
	t.Helper()
	zeros := make([]byte, 1<<20)
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	if withSize {
		w.ResetContentSize(&buf, int64(n))
	}
	for i := 0; i < n; i += len(zeros) {
		if _, err := w.Write(zeros[:min(len(zeros), n-i)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bombChunk wraps body as a chunk of the given mode that declares plain bytes.
func bombChunk(mode Mode, plain int, body []byte) []byte {
	c := []byte{byte(mode)}
	c = binary.AppendUvarint(c, uint64(plain))
	if mode.IsDelta() {
		// One block: the frame (without its magic number) as the ops
		// stream, the default base region, no literals.
		c = binary.AppendUvarint(c, uint64(len(body)-4)<<3|streamZstd)
		return append(append(c, body[4:]...), 0)
	}
	c = binary.AppendUvarint(c, uint64(len(body)))
	return append(c, body...)
}

// TestDecompressionBomb feeds frames that expand to 64 MiB into chunks that
// declare 64 KiB: decoding must stop with ErrTooLarge without allocating
// anything near the bomb's size.
func TestDecompressionBomb(t *testing.T) {
	const bomb = 64 << 20
	const declared = 64 << 10
	payload := make([]byte, declared)
	base := NewBase([]byte("x"))
	for _, withSize := range []bool{true, false} {
		frame := zeroFrame(t, bomb, withSize)
		if len(frame) >= declared {
			t.Fatalf("bomb frame %d bytes, want < %d", len(frame), declared)
		}
		for _, mode := range []Mode{ModeZstd, ModeDeltaZstd} {
			h, err := NewHeader(mode, LevelDefault, declared, declared, HashBytes(payload), base)
			if err != nil {
				t.Fatal(err)
			}
			chunk := bombChunk(mode, declared, frame)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			var d Decoder
			out, _, err := d.DecodeChunk(nil, &h, 0, chunk, base)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("%s bomb (content size declared %v): err %v, want ErrTooLarge", mode, withSize, err)
			}
			if len(out) != 0 {
				t.Fatalf("%s bomb returned %d bytes", mode, len(out))
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
				t.Fatalf("%s bomb allocated %d bytes before failing", mode, alloc)
			}
		}
	}
}

// TestDeclaredSizeLimits: a chunk claiming more plain bytes than its header,
// and a header claiming more than the limits, fail with ErrTooLarge before
// any decoding.
func TestDeclaredSizeLimits(t *testing.T) {
	p := pseudoText(1, 8<<10)
	h, err := NewHeader(ModeZstd, LevelDefault, 4<<10, int64(len(p)), HashBytes(p), nil)
	if err != nil {
		t.Fatal(err)
	}
	var d Decoder
	if _, _, err := d.DecodeChunk(nil, &h, 0, bombChunk(ModeZstd, 5<<10, []byte{1, 2, 3}), nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("chunk above header: err %v, want ErrTooLarge", err)
	}
	if _, _, err := d.DecodeChunk(nil, &h, 0, bombChunk(ModeZstd, 1<<30, []byte{1}), nil); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("chunk of 1 GiB: err %v, want ErrTooLarge", err)
	}
	enc, err := h.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ParseHeader(enc, Limits{MaxSize: 4 << 10, MaxChunkSize: MaxChunkSize}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("header above MaxSize: err %v, want ErrTooLarge", err)
	}
	if _, _, err := ParseHeader(enc, Limits{MaxSize: 1 << 20, MaxChunkSize: 2 << 10}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("header above MaxChunkSize: err %v, want ErrTooLarge", err)
	}
	// A stream whose body is a bomb fails the same way through ReadStream.
	frame := zeroFrame(t, 32<<20, false)
	q := pseudoText(2, 16<<10)
	h2, err := NewHeader(ModeZstd, LevelDefault, 16<<10, int64(len(q)), HashBytes(q), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) >= len(q) {
		t.Fatalf("bomb frame %d bytes, want < %d", len(frame), len(q))
	}
	stream, err := h2.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	stream = append(stream, bombChunk(ModeZstd, len(q), frame)...)
	if _, err := Decode(stream, nil, DefaultLimits()); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("bomb stream: err %v, want ErrTooLarge", err)
	}
}

// TestTruncated: every proper prefix of a header, chunk, summary and whole
// stream gives io.ErrUnexpectedEOF.
func TestTruncated(t *testing.T) {
	c := jsonCorpus(24 << 10)
	for _, mode := range dataModes {
		enc, err := Encode(mode, LevelDefault, 8<<10, c.new, c.base)
		if err != nil {
			t.Fatal(err)
		}
		h, hn, err := ParseHeader(enc, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		for i := range hn {
			if _, _, err := ParseHeader(enc[:i], DefaultLimits()); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s header prefix %d/%d: err %v", mode, i, hn, err)
			}
		}
		base := NewBase(c.base)
		var d Decoder
		_, cn, err := d.DecodeChunk(nil, &h, 0, enc[hn:], base)
		if err != nil {
			t.Fatal(err)
		}
		for i := range cn {
			if _, _, err := d.DecodeChunk(nil, &h, 0, enc[hn:hn+i], base); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s chunk prefix %d/%d: err %v", mode, i, cn, err)
			}
		}
		for i := 0; i < len(enc); i += max(1, len(enc)/200) {
			if _, err := Decode(enc[:i], c.base, DefaultLimits()); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s stream prefix %d/%d: err %v", mode, i, len(enc), err)
			}
		}
		var out bytes.Buffer
		if _, err := d.ReadStream(context.Background(), &out, bytes.NewReader(enc[:len(enc)-1]), base, DefaultLimits()); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%s stream minus one byte: err %v", mode, err)
		}
	}
}
