package codec

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// opsStream builds an ops stream from (lit, dd, cp) triples.
func opsStream(ops ...[3]int64) []byte {
	var o deltaOps
	for _, op := range ops {
		o.lit, o.dd, o.cp = append(o.lit, int32(op[0])), append(o.dd, int32(op[1])), append(o.cp, int32(op[2]))
	}
	return o.appendOps(nil)
}

// TestApplyOps: a valid program rebuilds the block; every kind of bad
// program is refused with ErrCorrupt and no output.
func TestApplyOps(t *testing.T) {
	region := []byte("0123456789abcdefghij")
	good := opsStream([3]int64{2, 5, 4}, [3]int64{0, -3, 3}, [3]int64{1, 0, 0})
	if long := opsStream([3]int64{20, -900, 300}); len(long) != 1+1+1+2+2 {
		t.Fatalf("escaped op encodes to %d bytes, want 7", len(long))
	}
	// "XY" + region[7:11] "789a" + region[8:11] "89a" + "Z"
	got, err := applyOps([]byte("pre"), good, []byte("XYZ"), region, 10, 0)
	if err != nil || string(got) != "preXY789a89aZ" {
		t.Fatalf("valid ops: %q, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		ops  []byte
		lits string
		n    int
	}{
		{"copy before region", opsStream([3]int64{0, -1, 4}), "", 4},
		{"copy past region", opsStream([3]int64{0, 18, 4}), "", 4},
		{"op that copies nothing", opsStream([3]int64{0, 0, 0}, [3]int64{0, 0, 4}), "", 4},
		{"too few literals", opsStream([3]int64{3, 0, 0}), "ab", 3},
		{"literals left over", opsStream([3]int64{2, 0, 0}), "abc", 2},
		{"short of the block", opsStream([3]int64{0, 0, 4}), "", 5},
		{"past the block", opsStream([3]int64{0, 0, 6}), "", 5},
		{"bytes after the ops", append(opsStream([3]int64{0, 0, 4}), 0), "", 4},
		{"truncated extras", opsStream([3]int64{0, 0, 4})[:2], "", 4},
		{"more tags than bytes", []byte{5, 0xb0}, "", 4},
		{"non-minimal varint", []byte{1, 0xbf, 0x80, 0x00, 4}, "", 4},
		{"huge cursor move", []byte{1, 0xf0, 0xff, 0xff, 0xff, 0xff, 0x7f, 4}, "", 4},
		{"escaped short cursor move", []byte{1, 0xf0, 0x02, 4}, "", 4},
		{"long form of a short copy", []byte{1, 0x30, 4}, "", 4},
	} {
		out, err := applyOps([]byte("pre"), tc.ops, []byte(tc.lits), region, tc.n, 0)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err %v, want ErrCorrupt", tc.name, err)
		}
		if string(out) != "pre" {
			t.Errorf("%s: output %q, want only the prefix", tc.name, out)
		}
	}
}

// TestDiffRoundTrip: the matcher's ops rebuild the block, including copies
// at a moved cursor and copies found through the hash table.
func TestDiffRoundTrip(t *testing.T) {
	base := pseudoText(3, 200<<10)
	nw := bytes.Clone(base[1000 : 150<<10])
	nw = append(nw[:5000:5000], append([]byte("inserted!"), nw[5000:]...)...) // cursor moves by -9
	nw = append(nw, base[:20<<10]...)                                         // copy from far away
	nw[60000] ^= 1
	var o deltaOps
	for _, d0 := range []int{1000, 0, len(base) - 1} {
		c0 := d0 / 2 // where the decoder's cursor starts need not be d0
		o.diff(nw, base, d0, c0)
		ops := o.appendOps(nil)
		got, err := applyOps(nil, ops, o.lits, base, len(nw), int64(c0))
		if err != nil || !bytes.Equal(got, nw) {
			t.Fatalf("d0 %d: round trip failed: %v", d0, err)
		}
		if d0 == 1000 && len(o.lits) > 64 {
			t.Fatalf("d0 %d: %d literal bytes for 9 inserted and 1 changed", d0, len(o.lits))
		}
	}
	o.diff(nw, nil, 0, 0) // no region: all literals
	if got, err := applyOps(nil, o.appendOps(nil), o.lits, nil, len(nw), 0); err != nil || !bytes.Equal(got, nw) {
		t.Fatalf("no region: %v", err)
	}
}

// TestDeltaDecodeIgnoresMargin: the decoder rebuilds the same bytes whatever
// margin its header names, as a core that fills in DefaultDeltaMargin for a
// sender that used another one does.
func TestDeltaDecodeIgnoresMargin(t *testing.T) {
	c := jsonCorpus(300 << 10)
	base := NewBase(c.base)
	for _, encMargin := range []int{0, 4 << 10, DefaultDeltaMargin(64 << 10), 100 << 10} {
		h, err := NewHeader(ModeDeltaZstd, LevelDefault, 64<<10, int64(len(c.new)), HashBytes(c.new), base)
		if err != nil {
			t.Fatal(err)
		}
		h.DeltaMargin = encMargin
		var e Encoder
		var enc bytes.Buffer
		if err := e.EncodeStream(context.Background(), &enc, bytes.NewReader(c.new), &h, base, 0); err != nil {
			t.Fatal(err)
		}
		for _, decMargin := range []int{0, DefaultDeltaMargin(64 << 10), 1 << 20} {
			dh := h
			dh.DeltaMargin = decMargin
			var d Decoder
			var out bytes.Buffer
			if err := d.DecodeStream(context.Background(), &out, bytes.NewReader(enc.Bytes()), &dh, base); err != nil || !bytes.Equal(out.Bytes(), c.new) {
				t.Fatalf("encoded with margin %d, decoded with %d: %v", encMargin, decMargin, err)
			}
		}
	}
}

// TestDeltaStreams: each stream form round-trips, an encoder's output does
// not depend on what it encoded before, and a stream that decodes past its
// limit or is not a valid form is refused.
func TestDeltaStreams(t *testing.T) {
	pack := func(e *Encoder, in []byte) []byte {
		kind, stored, err := e.packStream(LevelBetter, false, in)
		if err != nil {
			t.Fatal(err)
		}
		return append(appendStreamHead(nil, len(stored), false, kind), stored...)
	}
	read := func(b []byte, max int) ([]byte, error) {
		var d Decoder
		r := bytes.NewReader(b)
		used := 0
		n, _, kind, err := readStreamHead(r, "test", len(b)+max+1, &used)
		if err != nil {
			return nil, err
		}
		return d.readStream(nil, r, "test", n, kind, max)
	}
	inputs := [][]byte{
		[]byte("85.0475ok5781fault392.77ok449.5885169.3403"), // few symbols: Huffman
		pseudoText(4, 20<<10),                                // repeats: zstd
		rapidBytes(300),                                      // incompressible: raw
		bytes.Repeat([]byte{'a'}, 500),                       // one symbol: zstd, not Huffman
		{},
	}
	var shared Encoder
	kinds := map[byte]bool{}
	for i, in := range inputs {
		got := pack(&shared, in)
		var fresh Encoder
		if want := pack(&fresh, in); !bytes.Equal(got, want) {
			t.Fatalf("input %d: a used encoder's stream differs from a fresh one's", i)
		}
		kinds[got[0]&3] = true
		if out, err := read(got, len(in)); err != nil || !bytes.Equal(out, in) {
			t.Fatalf("input %d: round trip: %v", i, err)
		}
		if len(in) > 16 && got[0]&3 != streamRaw {
			if _, err := read(got, len(in)-1); !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("input %d (kind %d) decoded with a limit below its size: %v", i, got[0]&3, err)
			}
		}
	}
	if len(kinds) != numStreamKinds {
		t.Fatalf("inputs used stream kinds %v, want all %d", kinds, numStreamKinds)
	}
	if _, err := read([]byte{4<<3 | 3, 1, 2, 3, 4}, 100); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("stream kind 3: %v, want ErrCorrupt", err)
	}
	if _, err := read([]byte{4<<3 | streamHuff, 0xff, 0xff, 0xff, 0xff}, 100); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("garbage Huffman stream: %v, want ErrCorrupt", err)
	}
}
