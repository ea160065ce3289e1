package codec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets are seeded with valid encodings of every mode; the same
// seeds are committed under testdata/fuzz (regenerate with
// CODEC_WRITE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds ./codec/).

var fuzzLimits = Limits{MaxSize: 1 << 20, MaxChunkSize: 64 << 10}

func fuzzBase() []byte { return pseudoText(11, 6<<10) }

func fuzzSeeds(tb testing.TB) (streams, summaries [][]byte) {
	base := fuzzBase()
	edited := append([]byte("new head "), base[100:]...)
	edited[3000] ^= 0x20
	for _, mode := range dataModes {
		for _, p := range [][]byte{edited, nil, rapidBytes(1500)} {
			enc, err := Encode(mode, LevelDefault, MinChunkSize*2, p, base)
			if err != nil {
				tb.Fatal(err)
			}
			streams = append(streams, enc)
		}
	}
	for _, s := range []Summary{
		{Key: "sensors/7/temp", Size: 1234, Hash: HashBytes(base)},
		{Key: "k", Data: []byte("min=1 max=9")},
	} {
		b, err := s.Append(nil)
		if err != nil {
			tb.Fatal(err)
		}
		summaries = append(summaries, b)
	}
	return streams, summaries
}

// knownError reports whether err is one the package promises: a sentinel,
// or io.ErrUnexpectedEOF for truncated input.
func knownError(err error) bool {
	for _, s := range []error{ErrTooLarge, ErrHashMismatch, ErrBaseMismatch, ErrNoBase, ErrCorrupt, ErrBadMode, ErrBadLevel, ErrBadParam, io.ErrUnexpectedEOF} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func FuzzDecode(f *testing.F) {
	streams, _ := fuzzSeeds(f)
	for _, s := range streams {
		f.Add(s)
	}
	base := fuzzBase()
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := Decode(data, base, fuzzLimits)
		if err != nil {
			if !knownError(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		h, _, err := ParseHeader(data, fuzzLimits)
		if err != nil {
			t.Fatalf("decoded but header does not parse: %v", err)
		}
		if int64(len(out)) != h.Size || HashBytes(out) != h.Hash {
			t.Fatalf("decoded %d bytes not matching header size %d / hash", len(out), h.Size)
		}
	})
}

func FuzzParseSummary(f *testing.F) {
	_, sums := fuzzSeeds(f)
	for _, s := range sums {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, n, err := ParseSummary(data)
		if err != nil {
			if !knownError(err) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		b, err := s.Append(nil)
		if err != nil {
			t.Fatalf("parsed summary does not append: %v", err)
		}
		if string(b) != string(data[:n]) {
			t.Fatalf("re-encoding differs: %x vs %x", b, data[:n])
		}
	})
}

// TestWriteFuzzSeeds writes the seeds as the committed corpus.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("CODEC_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set CODEC_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	streams, sums := fuzzSeeds(t)
	write := func(target string, seeds [][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write("FuzzDecode", streams)
	write("FuzzParseSummary", sums)
}
