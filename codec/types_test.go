package codec

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"pgregory.net/rapid"
)

func TestModeAndLevelNames(t *testing.T) {
	for m := ModeFull; m < numModes; m++ {
		got, err := ParseMode(strings.ToUpper(m.String()))
		if err != nil || got != m {
			t.Fatalf("ParseMode(%q) = %v, %v", m, got, err)
		}
		var u Mode
		txt, _ := m.MarshalText()
		if err := u.UnmarshalText(txt); err != nil || u != m {
			t.Fatalf("text round trip of %s: %v %v", m, u, err)
		}
	}
	if m, err := ParseMode("delta-zstd"); err != nil || m != ModeDeltaZstd {
		t.Fatalf("delta-zstd: %v %v", m, err)
	}
	for _, bad := range []string{"", "gzip", "delta+"} {
		if _, err := ParseMode(bad); !errors.Is(err, ErrBadMode) {
			t.Fatalf("ParseMode(%q): %v", bad, err)
		}
	}
	if _, err := Mode(0).MarshalText(); !errors.Is(err, ErrBadMode) {
		t.Fatal("mode 0 marshalled")
	}
	for _, l := range Levels() {
		got, err := ParseLevel(l.String())
		if err != nil || got != l {
			t.Fatalf("ParseLevel(%q) = %v, %v", l, got, err)
		}
	}
	if _, err := ParseLevel("ultra"); !errors.Is(err, ErrBadLevel) {
		t.Fatal("ParseLevel accepted ultra")
	}
	if LevelFor(edgesync.Satellite) != LevelBest || LevelFor(edgesync.Broadband) != LevelDefault {
		t.Fatal("LevelFor defaults changed without updating the README")
	}
}

func TestHash(t *testing.T) {
	p := []byte("edge-sync")
	h, n, err := HashOf(bytes.NewReader(p))
	if err != nil || n != int64(len(p)) || h != HashBytes(p) {
		t.Fatalf("HashOf: %v %d %v", h, n, err)
	}
	back, err := ParseHash(h.String())
	if err != nil || back != h {
		t.Fatalf("ParseHash: %v", err)
	}
	if _, err := ParseHash("abc"); !errors.Is(err, ErrBadParam) {
		t.Fatalf("short hash: %v", err)
	}
	if _, err := ParseHash(strings.Repeat("zz", 32)); !errors.Is(err, ErrBadParam) {
		t.Fatalf("non-hex hash: %v", err)
	}
}

func TestHeaderProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mode := rapid.SampledFrom(dataModes).Draw(t, "mode")
		h := Header{
			Mode:      mode,
			Level:     rapid.SampledFrom(Levels()).Draw(t, "level"),
			ChunkSize: rapid.IntRange(MinChunkSize, MaxChunkSize).Draw(t, "chunk"),
			Size:      rapid.Int64Range(0, 1<<40).Draw(t, "size"),
		}
		copy(h.Hash[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "hash"))
		if mode.IsDelta() {
			h.DeltaMargin = rapid.IntRange(0, MaxDeltaMargin).Draw(t, "margin")
			h.BaseSize = rapid.Int64Range(0, 1<<40).Draw(t, "basesize")
			copy(h.BaseHash[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "basehash"))
		}
		b, err := h.Append([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := ParseHeader(b[6:], Limits{MaxSize: 1 << 40, MaxChunkSize: MaxChunkSize})
		if err != nil || n != len(b)-6 || got != h {
			t.Fatalf("round trip: %+v %d %v, want %+v", got, n, err, h)
		}
		for i := range n {
			if _, _, err := ParseHeader(b[6:6+i], DefaultLimits()); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("prefix %d: %v", i, err)
			}
		}
	})
	bad := []Header{
		{Mode: ModeSummary, Level: LevelBest, ChunkSize: 4096},
		{Mode: ModeZstd, Level: 9, ChunkSize: 4096},
		{Mode: ModeZstd, Level: LevelBest, ChunkSize: 10},
		{Mode: ModeZstd, Level: LevelBest, ChunkSize: 4096, Size: -1},
		{Mode: ModeZstd, Level: LevelBest, ChunkSize: 4096, BaseSize: 5},
	}
	for _, h := range bad {
		if _, err := h.Append(nil); err == nil {
			t.Fatalf("Append accepted %+v", h)
		}
	}
}

func TestSummaryProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := Summary{
			Key:  rapid.StringN(1, 64, MaxSummaryKey).Draw(t, "key"),
			Size: rapid.Int64Range(0, 1<<62).Draw(t, "size"),
			Data: rapid.SliceOfN(rapid.Byte(), 0, 300).Draw(t, "data"),
		}
		if len(s.Data) == 0 {
			s.Data = nil
		}
		copy(s.Hash[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, "hash"))
		if rapid.Bool().Draw(t, "hastime") {
			s.Time = time.Unix(0, rapid.Int64Range(1, 1<<62).Draw(t, "ns")).UTC()
		}
		if len(s.Key) > MaxSummaryKey {
			t.Skip("key too long for the bound")
		}
		b, err := s.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, n, err := ParseSummary(b)
		if err != nil || n != len(b) {
			t.Fatalf("parse: %d %v", n, err)
		}
		if got.Key != s.Key || got.Size != s.Size || got.Hash != s.Hash || !got.Time.Equal(s.Time) || !bytes.Equal(got.Data, s.Data) {
			t.Fatalf("round trip: %+v, want %+v", got, s)
		}
		for i := range len(b) {
			if _, _, err := ParseSummary(b[:i]); !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("prefix %d/%d: %v", i, len(b), err)
			}
		}
	})
	for _, s := range []Summary{
		{},
		{Key: strings.Repeat("k", MaxSummaryKey+1)},
		{Key: "k", Data: make([]byte, MaxSummaryData+1)},
		{Key: "k", Size: -1},
	} {
		if _, err := s.Append(nil); err == nil {
			t.Fatalf("Append accepted a summary with key %d bytes, data %d, size %d", len(s.Key), len(s.Data), s.Size)
		}
	}
}
