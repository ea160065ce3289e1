package codec

import (
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// countBudget is a Budget of limit bytes that counts what it holds.
type countBudget struct {
	limit, held, peak int
}

var errSpent = errors.New("budget spent")

func (b *countBudget) Reserve(n int) error {
	if b.held+n > b.limit {
		return errSpent
	}
	b.held += n
	b.peak = max(b.peak, b.held)
	return nil
}

func (b *countBudget) Release(n int) { b.held -= n }

// regionChunk returns a delta chunk of plain bytes whose one block records
// the base region [0, region) and has neither ops nor literals.
func regionChunk(plain, region int) []byte {
	c := append([]byte{byte(ModeDelta)}, binary.AppendUvarint(nil, uint64(plain))...)
	c = binary.AppendUvarint(c, 1<<2) // ops: none stored, raw, region recorded
	c = binary.AppendUvarint(c, 0)
	c = binary.AppendUvarint(c, uint64(region))
	return binary.AppendUvarint(c, streamRaw) // literals: none stored
}

// TestDecoderBudget: a Decoder with a Budget reserves its scratch before
// it grows it, by what the encoded bytes declare, and Free gives it all
// back. A delta chunk of 64 KiB may name a base region of up to
// MaxDeltaRegion (48 MiB) of a large base, which the decoder reads whole:
// a budget that refuses it fails the chunk with its error before the
// region is read; one that fits holds it until Free. A chunk that
// declares a stored body longer than the bytes it has fails before any
// scratch is reserved.
func TestDecoderBudget(t *testing.T) {
	const plain, region = 64 << 10, 4 << 20
	base := NewBase(make([]byte, region))
	h, err := NewHeader(ModeDelta, LevelDefault, plain, plain, Hash{}, base)
	if err != nil {
		t.Fatal(err)
	}
	chunk := regionChunk(plain, region)

	small := &countBudget{limit: region - 1}
	d := Decoder{Budget: small}
	if _, _, err := d.DecodeChunk(nil, &h, 0, chunk, base); !errors.Is(err, errSpent) {
		t.Fatalf("a %d-byte region against a budget of %d: %v, want the budget's refusal", region, small.limit, err)
	}
	if small.peak != 0 {
		t.Errorf("the refused decode reserved %d bytes", small.peak)
	}

	ample := &countBudget{limit: 2 * region}
	d = Decoder{Budget: ample}
	if _, _, err := d.DecodeChunk(nil, &h, 0, chunk, base); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a block with no ops: %v, want ErrCorrupt", err)
	}
	if ample.held < region {
		t.Errorf("the decoder holds %d bytes of its budget after reading a %d-byte region", ample.held, region)
	}
	d.Free()
	if ample.held != 0 {
		t.Errorf("%d bytes still reserved after Free", ample.held)
	}

	// A full chunk that declares plain stored bytes and carries 10.
	full := append([]byte{byte(ModeFull)}, binary.AppendUvarint(nil, plain)...)
	full = append(binary.AppendUvarint(full, plain), make([]byte, 10)...)
	hf, err := NewHeader(ModeFull, LevelDefault, plain, plain, Hash{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &countBudget{limit: 1 << 30}
	d = Decoder{Budget: b}
	if _, _, err := d.DecodeChunk(nil, &hf, 0, full, nil); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("a chunk of %d declared bytes with 10: %v, want io.ErrUnexpectedEOF", plain, err)
	}
	if b.peak != 0 {
		t.Errorf("a chunk short of its declared body reserved %d bytes for it", b.peak)
	}
}
