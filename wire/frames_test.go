package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"

	"pgregory.net/rapid"
)

// roundTrip checks Append, Len and Parse agree for one frame, with bytes
// before and after it in the buffer.
func roundTrip(t *rapid.T, f Frame) {
	prefix := rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "prefix")
	b, err := f.Append(bytes.Clone(prefix))
	if err != nil {
		t.Fatalf("append %s: %v", f.Type(), err)
	}
	if !bytes.Equal(b[:len(prefix)], prefix) {
		t.Fatalf("append %s changed the bytes before it", f.Type())
	}
	enc := b[len(prefix):]
	if len(enc) != f.Len() {
		t.Fatalf("%s: Len() = %d, Append wrote %d", f.Type(), f.Len(), len(enc))
	}
	trailer := []byte{0xde, 0xad}
	got, n, err := Parse(append(bytes.Clone(enc), trailer...))
	if err != nil {
		t.Fatalf("parse %s: %v", f.Type(), err)
	}
	if n != len(enc) {
		t.Fatalf("parse %s consumed %d bytes, want %d", f.Type(), n, len(enc))
	}
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("round trip of %s:\n got %#v\nwant %#v", f.Type(), got, f)
	}
}

func TestRoundTripEveryFrame(t *testing.T) {
	for _, ft := range allFrameTypes() {
		t.Run(ft.String(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) { roundTrip(t, frameGens[ft].Draw(t, "frame")) })
		})
	}
}

func TestEveryTruncatedPrefixIsUnexpectedEOF(t *testing.T) {
	for _, ft := range allFrameTypes() {
		t.Run(ft.String(), func(t *testing.T) {
			rapid.Check(t, func(t *rapid.T) {
				f := frameGens[ft].Draw(t, "frame")
				b, err := f.Append(nil)
				if err != nil {
					t.Fatalf("append: %v", err)
				}
				for i := range len(b) {
					if _, _, err := Parse(b[:i]); !errors.Is(err, io.ErrUnexpectedEOF) {
						t.Fatalf("%s: Parse of %d of %d bytes: err = %v, want io.ErrUnexpectedEOF", ft, i, len(b), err)
					}
				}
				// The same through a stream: a cut after the first byte is
				// unexpected; a cut at 0 is a clean end.
				for _, i := range []int{0, 1, len(b) / 2, len(b) - 1} {
					_, err := ReadFrame(bytes.NewReader(b[:i]), 0)
					want := io.ErrUnexpectedEOF
					if i == 0 {
						want = io.EOF
					}
					if err != want {
						t.Fatalf("%s: ReadFrame of %d of %d bytes: err = %v, want %v", ft, i, len(b), err, want)
					}
				}
			})
		})
	}
}

func TestReadWriteFrameStream(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		frames := rapid.SliceOfN(genAnyFrame(), 1, 20).Draw(t, "frames")
		var buf bytes.Buffer
		for _, f := range frames {
			if err := WriteFrame(&buf, f); err != nil {
				t.Fatalf("write %s: %v", f.Type(), err)
			}
		}
		// OneByteReader is not an io.ByteReader and returns one byte per
		// Read: the slowest, most fragmenting stream there is.
		oneByte := rapid.Bool().Draw(t, "one byte reads")
		var r io.Reader = bytes.NewReader(buf.Bytes())
		if oneByte {
			r = iotest.OneByteReader(r)
		}
		// Half the runs read through a Reader that reuses its buffer; each
		// frame is compared before the next read, as its contract requires.
		read := func() (Frame, error) { return ReadFrame(r, 0) }
		if rapid.Bool().Draw(t, "reuse buffer") {
			fr := NewReader(r, 0)
			read = fr.ReadFrame
		}
		for i, want := range frames {
			got, err := read()
			if err != nil {
				t.Fatalf("read frame %d (%s): %v", i, want.Type(), err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("frame %d:\n got %#v\nwant %#v", i, got, want)
			}
		}
		if _, err := read(); err != io.EOF {
			t.Fatalf("after the last frame: err = %v, want io.EOF", err)
		}
	})
}

func TestWriteFrameRefusesInvalidFrame(t *testing.T) {
	var buf bytes.Buffer
	err := WriteFrame(&buf, &Ack{})
	if !errors.Is(err, ErrInvalidField) {
		t.Fatalf("WriteFrame(empty Ack) = %v, want ErrInvalidField", err)
	}
	if buf.Len() != 0 {
		t.Fatalf("WriteFrame wrote %d bytes of an invalid frame", buf.Len())
	}
}

func TestFrameTypeNames(t *testing.T) {
	seen := map[string]bool{}
	for _, ft := range allFrameTypes() {
		if seen[ft.String()] {
			t.Fatalf("duplicate name %q", ft)
		}
		seen[ft.String()] = true
		if frameGens[ft] == nil {
			t.Fatalf("no generator for %s: every frame type needs round-trip tests", ft)
		}
	}
	if len(seen) != len(frameGens) {
		t.Fatalf("%d frame types, %d generators", len(seen), len(frameGens))
	}
	if got := FrameType(0x99).String(); got != "frame(0x99)" {
		t.Fatalf("unknown type name = %q", got)
	}
}
