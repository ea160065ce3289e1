package codec

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"pgregory.net/rapid"
)

var dataModes = []Mode{ModeFull, ModeZstd, ModeDelta, ModeDeltaZstd}

// genPair draws a base and a new version: related by edits, unrelated, or
// with an empty side.
func genPair(t *rapid.T) (base, nw []byte) {
	size := rapid.IntRange(0, 40<<10).Draw(t, "size")
	seed := rapid.Uint64().Draw(t, "seed")
	base = pseudoText(seed, size)
	switch rapid.IntRange(0, 3).Draw(t, "relation") {
	case 0: // scattered edits, an insertion and a deletion
		nw = bytes.Clone(base)
		for range rapid.IntRange(0, 20).Draw(t, "edits") {
			if len(nw) == 0 {
				break
			}
			nw[rapid.IntRange(0, len(nw)-1).Draw(t, "at")] ^= byte(rapid.IntRange(1, 255).Draw(t, "x"))
		}
		if len(nw) > 0 {
			at := rapid.IntRange(0, len(nw)).Draw(t, "ins")
			ins := rapid.SliceOfN(rapid.Byte(), 0, 5000).Draw(t, "insert")
			nw = append(nw[:at:at], append(ins, nw[at:]...)...)
			del := rapid.IntRange(0, len(nw)/8).Draw(t, "del")
			at = rapid.IntRange(0, len(nw)-del).Draw(t, "delat")
			nw = append(nw[:at:at], nw[at+del:]...)
		}
	case 1: // appended
		nw = append(bytes.Clone(base), pseudoText(seed+1, rapid.IntRange(0, 8<<10).Draw(t, "grow"))...)
	case 2: // unrelated, maybe incompressible
		nw = rapid.SliceOfN(rapid.Byte(), 0, 20<<10).Draw(t, "random")
	default: // new from nothing, or base empty
		nw, base = base, nil
	}
	return base, nw
}

// pseudoText is deterministic, compressible, not trivially repetitive data.
func pseudoText(seed uint64, n int) []byte {
	words := []string{"edge", "sync", "core ", "agent", "{\"k\":", "42,", "satellite\n", "delta", " ", "zstd"}
	b := make([]byte, 0, n+16)
	x := seed | 1
	for len(b) < n {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b = append(b, words[x%uint64(len(words))]...)
		if x%7 == 0 {
			b = append(b, byte(x>>8))
		}
	}
	return b[:n]
}

func TestRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base, nw := genPair(t)
		mode := rapid.SampledFrom(dataModes).Draw(t, "mode")
		level := rapid.SampledFrom(Levels()).Draw(t, "level")
		chunk := rapid.SampledFrom([]int{MinChunkSize, 4 << 10, 16 << 10, 16 << 10}).Draw(t, "chunk")
		enc, err := Encode(mode, level, chunk, nw, base)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		dec, err := Decode(enc, base, DefaultLimits())
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !bytes.Equal(dec, nw) {
			t.Fatalf("decoded %d bytes differ from %d-byte payload", len(dec), len(nw))
		}
		// Deterministic: a second encode (with pooled encoders now warm
		// from other inputs) gives the same bytes.
		if _, err := Encode(ModeDeltaZstd, level, 16<<10, base, nw); err != nil {
			t.Fatal(err)
		}
		again, err := Encode(mode, level, chunk, nw, base)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, again) {
			t.Fatalf("encoding not deterministic: %d vs %d bytes", len(enc), len(again))
		}
		// Every chunk is no larger than plain plus its small prefix.
		if limit := len(nw) + 120 + 16*int((len(nw)+chunk-1)/chunk); len(enc) > limit {
			t.Fatalf("encoding %d bytes above bound %d", len(enc), limit)
		}
	})
}

// TestResumeAtChunk checks that encoding from chunk k reproduces the tail of
// the full encoding byte for byte, and that DecodeChunk decodes each chunk.
func TestResumeAtChunk(t *testing.T) {
	c := jsonCorpus(160 << 10)
	base := NewBase(c.base)
	for _, mode := range dataModes {
		h, err := NewHeader(mode, LevelBetter, 32<<10, int64(len(c.new)), HashBytes(c.new), base)
		if err != nil {
			t.Fatal(err)
		}
		var e Encoder
		var full bytes.Buffer
		if err := e.EncodeStream(context.Background(), &full, bytes.NewReader(c.new), &h, base, 0); err != nil {
			t.Fatal(err)
		}
		// Split the full stream into chunks with DecodeChunk.
		var d Decoder
		rest := full.Bytes()
		var offsets []int
		var plain []byte
		for i := range h.Chunks() {
			offsets = append(offsets, len(full.Bytes())-len(rest))
			var n int
			plain, n, err = d.DecodeChunk(plain, &h, i, rest, base)
			if err != nil {
				t.Fatalf("%s chunk %d: %v", mode, i, err)
			}
			rest = rest[n:]
		}
		if len(rest) != 0 || !bytes.Equal(plain, c.new) {
			t.Fatalf("%s: chunk-wise decode: %d bytes left, equal=%v", mode, len(rest), bytes.Equal(plain, c.new))
		}
		for _, k := range []int64{1, h.Chunks() / 2, h.Chunks() - 1} {
			off, _, _ := h.ChunkRange(k)
			var tail bytes.Buffer
			if err := e.EncodeStream(context.Background(), &tail, bytes.NewReader(c.new[off:]), &h, base, k); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(tail.Bytes(), full.Bytes()[offsets[k]:]) {
				t.Fatalf("%s: resume at chunk %d differs from the full stream", mode, k)
			}
		}
	}
}

// TestDeltaFallback checks the per-chunk mode: an unrelated base makes delta
// chunks fall back, and the result still decodes and is not larger than
// zstd (delta+zstd) or full (delta).
func TestDeltaFallback(t *testing.T) {
	nw := pseudoText(7, 64<<10)
	unrelated := make([]byte, 64<<10)
	for i := range unrelated {
		unrelated[i] = byte(i * 7919 >> 3)
	}
	zs, err := Encode(ModeZstd, LevelDefault, 16<<10, nw, nil)
	if err != nil {
		t.Fatal(err)
	}
	dz, err := Encode(ModeDeltaZstd, LevelDefault, 16<<10, nw, unrelated)
	if err != nil {
		t.Fatal(err)
	}
	h, n, err := ParseHeader(dz, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	// Header differences: delta headers carry margin, base size and hash.
	if slack := 40 + 8*4; len(dz) > len(zs)+slack {
		t.Fatalf("delta+zstd on unrelated base %d bytes, zstd %d: fallback did not happen", len(dz), len(zs))
	}
	if got := Mode(dz[n]); got != ModeZstd && got != ModeDeltaZstd {
		t.Fatalf("first chunk mode %s", got)
	}
	if dec, err := Decode(dz, unrelated, DefaultLimits()); err != nil || !bytes.Equal(dec, nw) {
		t.Fatalf("decode fallback: %v", err)
	}
	_ = h
	// Incompressible data falls back to full in every mode.
	rnd := rapidBytes(20 << 10)
	for _, m := range dataModes {
		enc, err := Encode(m, LevelDefault, 4<<10, rnd, unrelated)
		if err != nil {
			t.Fatal(err)
		}
		h, n, err := ParseHeader(enc, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		if Mode(enc[n]) != ModeFull {
			t.Fatalf("%s of random bytes: first chunk mode %s, want full", m, Mode(enc[n]))
		}
		if len(enc) > len(rnd)+n+int(h.Chunks())*8 {
			t.Fatalf("%s of random bytes grew to %d", m, len(enc))
		}
	}
}

func rapidBytes(n int) []byte {
	b := make([]byte, n)
	x := uint64(0x9e3779b97f4a7c15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x >> 32)
	}
	return b
}

func TestWrongBase(t *testing.T) {
	c := jsonCorpus(128 << 10)
	enc, err := Encode(ModeDeltaZstd, LevelBetter, 16<<10, c.new, c.base)
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Clone(c.base)
	other[len(other)/2] ^= 1 // same size, one bit different
	cases := []struct {
		name string
		base *Base
		want error
	}{
		{"same size, other bytes", &Base{R: bytes.NewReader(other), Size: int64(len(other))}, ErrBaseMismatch},
		{"other size", NewBase(c.base[:len(c.base)-1]), ErrBaseMismatch},
		{"new version as base", NewBase(c.new), ErrBaseMismatch},
		{"no base", nil, ErrNoBase},
	}
	for _, tc := range cases {
		var out bytes.Buffer
		var d Decoder
		_, err := d.ReadStream(context.Background(), &out, bytes.NewReader(enc), tc.base, DefaultLimits())
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
		if out.Len() != 0 {
			t.Errorf("%s: %d bytes written before the base was checked", tc.name, out.Len())
		}
	}
}

func TestCorruptBodyDetected(t *testing.T) {
	c := logCorpus(64 << 10)
	for _, m := range dataModes {
		enc, err := Encode(m, LevelDefault, 8<<10, c.new, c.base)
		if err != nil {
			t.Fatal(err)
		}
		// Flip one byte in the last quarter (chunk bodies, past the header).
		bad := bytes.Clone(enc)
		bad[len(bad)-len(bad)/4] ^= 0x55
		_, err = Decode(bad, c.base, DefaultLimits())
		if err == nil {
			t.Fatalf("%s: corrupt encoding decoded without error", m)
		}
		if !errors.Is(err, ErrHashMismatch) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) &&
			!errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, ErrBadMode) {
			t.Fatalf("%s: corrupt encoding: unexpected error %v", m, err)
		}
	}
}

func TestEncodeStreamCatchesChangedPayload(t *testing.T) {
	p := pseudoText(3, 10<<10)
	h, err := NewHeader(ModeZstd, LevelDefault, 4<<10, int64(len(p)), HashBytes(p), nil)
	if err != nil {
		t.Fatal(err)
	}
	q := bytes.Clone(p)
	q[5000] ^= 1
	var e Encoder
	if err := e.EncodeStream(context.Background(), io.Discard, bytes.NewReader(q), &h, nil, 0); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("changed payload: err %v, want ErrHashMismatch", err)
	}
	if err := e.EncodeStream(context.Background(), io.Discard, bytes.NewReader(append(p, 'x')), &h, nil, 0); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("longer payload: err %v, want ErrHashMismatch", err)
	}
	if err := e.EncodeStream(context.Background(), io.Discard, bytes.NewReader(p[:9000]), &h, nil, 0); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("shorter payload: err %v, want io.ErrUnexpectedEOF", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := e.EncodeStream(ctx, io.Discard, bytes.NewReader(p), &h, nil, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err %v", err)
	}
}

// TestDeltaModesLadder: ModeDelta never entropy-codes (its chunks are delta
// or full, never zstd) and ModeDeltaZstd is no larger on text.
func TestDeltaModesLadder(t *testing.T) {
	c := jsonCorpus(96 << 10)
	sizes := map[Mode]int{}
	for _, mode := range []Mode{ModeDelta, ModeDeltaZstd} {
		enc, err := Encode(mode, LevelDefault, 16<<10, c.new, c.base)
		if err != nil {
			t.Fatal(err)
		}
		sizes[mode] = len(enc)
		h, n, err := ParseHeader(enc, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		var d Decoder
		base := NewBase(c.base)
		rest := enc[n:]
		for i := range h.Chunks() {
			got := Mode(rest[0])
			if mode == ModeDelta && got != ModeDelta && got != ModeFull {
				t.Fatalf("delta payload chunk %d used %s", i, got)
			}
			if got != mode {
				t.Fatalf("%s chunk %d fell back to %s on an edited corpus", mode, i, got)
			}
			_, used, err := d.DecodeChunk(nil, &h, i, rest, base)
			if err != nil {
				t.Fatal(err)
			}
			rest = rest[used:]
		}
	}
	if sizes[ModeDeltaZstd] > sizes[ModeDelta] {
		t.Fatalf("delta+zstd %d bytes > delta %d bytes", sizes[ModeDeltaZstd], sizes[ModeDelta])
	}
	if sizes[ModeDelta] > len(c.new)/10 {
		t.Fatalf("delta of a 2%%-edited corpus is %d of %d bytes", sizes[ModeDelta], len(c.new))
	}
}

// TestMultiBlockDelta: chunks larger than a delta block carry several block
// records (with and without a base region) and still round-trip; every
// prefix of such a chunk is io.ErrUnexpectedEOF.
func TestMultiBlockDelta(t *testing.T) {
	c := jsonCorpus(900 << 10)
	grown := append(bytes.Clone(c.new), pseudoText(9, 300<<10)...) // a block past the base's end
	base := NewBase(c.base)
	for _, mode := range []Mode{ModeDelta, ModeDeltaZstd} {
		enc, err := Encode(mode, LevelDefault, 2<<20, grown, c.base)
		if err != nil {
			t.Fatal(err)
		}
		dec, err := Decode(enc, c.base, DefaultLimits())
		if err != nil || !bytes.Equal(dec, grown) {
			t.Fatalf("%s: multi-block round trip: %v", mode, err)
		}
		h, n, err := ParseHeader(enc, DefaultLimits())
		if err != nil {
			t.Fatal(err)
		}
		if Mode(enc[n]) != mode {
			t.Fatalf("%s: first chunk used %s", mode, Mode(enc[n]))
		}
		var d Decoder
		_, cn, err := d.DecodeChunk(nil, &h, 0, enc[n:], base)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < cn; i += 97 {
			if _, _, err := d.DecodeChunk(nil, &h, 0, enc[n:n+i], base); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("%s: chunk prefix %d/%d: %v", mode, i, cn, err)
			}
		}
	}
}

// TestDeltaRealignsAfterLargeInsertion: a 64 KiB insertion (far more than
// the margin) near the start must not turn the rest of the payload into new
// data: the encoder finds the shifted bytes and the delta stays small.
func TestDeltaRealignsAfterLargeInsertion(t *testing.T) {
	base := rapidBytes(1 << 20) // incompressible: only the base can help
	ins := pseudoText(5, 64<<10)
	nw := append(append(bytes.Clone(base[:100<<10]), ins...), base[100<<10:]...)
	nw = append(nw[:700<<10:700<<10], nw[(700<<10)+(20<<10):]...) // and a 20 KiB deletion
	enc, err := Encode(ModeDeltaZstd, LevelDefault, 256<<10, nw, base)
	if err != nil {
		t.Fatal(err)
	}
	if dec, err := Decode(enc, base, DefaultLimits()); err != nil || !bytes.Equal(dec, nw) {
		t.Fatalf("round trip: %v", err)
	}
	zs, err := Encode(ModeZstd, LevelDefault, 256<<10, ins, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The inserted text costs about its zstd size; everything else should
	// cost little. Unaligned, the delta would be about the whole megabyte.
	if limit := len(zs) + 32<<10; len(enc) > limit {
		t.Fatalf("delta after a 64 KiB insertion is %d bytes, want <= %d (inserted text alone: %d)", len(enc), limit, len(zs))
	}
	t.Logf("delta %d bytes for %d-byte payload; inserted text zstd %d", len(enc), len(nw), len(zs))
}
