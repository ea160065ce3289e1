package wire

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

var sinkFrame Frame

// paired runs base and ours alternately, reps times each per iteration, and
// reports ours against base. Timing both in the same loop makes the ratio
// robust against the noisy, shared machine (other work slows both alike).
func paired(b *testing.B, size, reps int, base, ours func(), unit string) {
	var baseT, oursT time.Duration
	b.SetBytes(int64(size * reps))
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		for range reps {
			base()
		}
		t1 := time.Now()
		for range reps {
			ours()
		}
		baseT += t1.Sub(t0)
		oursT += time.Since(t1)
	}
	n := float64(b.N) * float64(reps) * float64(size)
	b.ReportMetric(float64(oursT)/float64(baseT), unit)
	b.ReportMetric(n/oursT.Seconds()/1e6, "wire-MB/s")
	b.ReportMetric(n/baseT.Seconds()/1e6, "base-MB/s")
}

// BenchmarkAppendParse encodes and parses a Data frame, against the
// baseline of copying the same chunk once into a reused buffer
// (ratio-vs-copy; 1.0 means framing costs no more than one copy). Parse
// aliases the chunk, so Append's copy is the only one on our side. The
// ns/op and MB/s columns cover both loops; wire-MB/s is ours alone.
func BenchmarkAppendParse(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20, MaxChunkSize} {
		b.Run(fmt.Sprintf("chunk=%dKiB", size>>10), func(b *testing.B) {
			chunk := bytes.Repeat([]byte("edge-sync"), size/9+1)[:size]
			f := &Data{ID: edgesync.OpID{1}, Offset: 1 << 30, Chunk: chunk}
			buf := make([]byte, 0, f.Len())
			dst := make([]byte, size)
			reps := max(1, (256<<10)/size)
			paired(b, size, reps,
				func() { copy(dst, chunk) },
				func() {
					var err error
					if buf, err = f.Append(buf[:0]); err != nil {
						b.Fatal(err)
					}
					if sinkFrame, _, err = Parse(buf); err != nil {
						b.Fatal(err)
					}
				}, "ratio-vs-copy")
		})
	}
}

// BenchmarkReadFrame reads a 64 KiB Data frame from a stream against
// io.ReadFull of the same bytes into a reused buffer: "alloc" is the
// package-level ReadFrame (a fresh body per frame, which the caller owns),
// "reuse" is Reader.ReadFrame (one buffer per stream).
func BenchmarkReadFrame(b *testing.B) {
	const size = 64 << 10
	f := &Data{ID: edgesync.OpID{1}, Chunk: make([]byte, size)}
	enc, err := f.Append(nil)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, len(enc))
	src := bytes.NewReader(enc)
	base := func() { src.Reset(enc); _, _ = io.ReadFull(src, dst) }
	b.Run("alloc", func(b *testing.B) {
		paired(b, size, 4, base, func() {
			src.Reset(enc)
			if sinkFrame, err = ReadFrame(src, 0); err != nil {
				b.Fatal(err)
			}
		}, "ratio-vs-readfull")
	})
	b.Run("reuse", func(b *testing.B) {
		fr := NewReader(src, 0)
		paired(b, size, 4, base, func() {
			src.Reset(enc)
			if sinkFrame, err = fr.ReadFrame(); err != nil {
				b.Fatal(err)
			}
		}, "ratio-vs-readfull")
	})
}
