package codec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Benchmarks. Figures in docs/codec.md#figures come from
//
//	go test -run '^$' -bench . -benchtime 3x ./codec/
//
// Every ratio is measured in the same run: plain zstd at the same level and
// chunk size, and `zstd -19 --patch-from` (when the zstd command exists).

const benchCorpusSize = 8 << 20

var (
	benchOnce    sync.Once
	benchCorpora []corpus
	patchMu      sync.Mutex
	patchSizes   = map[string]int{}
)

func benchCorpus(b *testing.B) []corpus {
	benchOnce.Do(func() { benchCorpora = corpora(benchCorpusSize) })
	return benchCorpora
}

// patchFromSize returns the size of `zstd -19 --patch-from=base new`, or 0
// when the zstd command is not installed.
func patchFromSize(b *testing.B, c corpus) int {
	patchMu.Lock()
	defer patchMu.Unlock()
	if n, ok := patchSizes[c.name]; ok {
		return n
	}
	zstdCmd, err := exec.LookPath("zstd")
	if err != nil {
		patchSizes[c.name] = 0
		return 0
	}
	dir := b.TempDir()
	bp, np, op := filepath.Join(dir, "base"), filepath.Join(dir, "new"), filepath.Join(dir, "out.zst")
	if err := os.WriteFile(bp, c.base, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(np, c.new, 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(zstdCmd, "-q", "-19", "--patch-from="+bp, np, "-o", op)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("zstd --patch-from: %v: %s", err, out)
	}
	st, err := os.Stat(op)
	if err != nil {
		b.Fatal(err)
	}
	patchSizes[c.name] = int(st.Size())
	return int(st.Size())
}

type countWriter struct{ n int }

func (w *countWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// encodedSize encodes c.new with h's settings and returns the stream's size
// (header included).
func encodedSize(b *testing.B, e *Encoder, h Header, c corpus) int {
	var base *Base
	if h.Mode.IsDelta() {
		base = NewBase(c.base)
	}
	var w countWriter
	if err := e.WriteStream(context.Background(), &w, bytes.NewReader(c.new), &h, base); err != nil {
		b.Fatal(err)
	}
	return w.n
}

func benchHeader(b *testing.B, mode Mode, level Level, chunk int, c corpus) Header {
	var base *Base
	if mode.IsDelta() {
		base = NewBase(c.base)
	}
	h, err := NewHeader(mode, level, chunk, int64(len(c.new)), HashBytes(c.new), base)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// BenchmarkDelta encodes each corpus's new version against its base and
// reports delta bytes, the ratio to plain zstd of the new version at the same
// level and chunk size, and the ratio to `zstd -19 --patch-from`.
func BenchmarkDelta(b *testing.B) {
	for _, c := range benchCorpus(b) {
		for _, mode := range []Mode{ModeDelta, ModeDeltaZstd} {
			for _, level := range []Level{LevelDefault, LevelBetter, LevelBest} {
				for _, chunk := range []int{64 << 10, 1 << 20} {
					name := fmt.Sprintf("corpus=%s/mode=%s/level=%s/chunk=%dKiB", c.name, mode, level, chunk>>10)
					b.Run(name, func(b *testing.B) {
						var e Encoder
						h := benchHeader(b, mode, level, chunk, c)
						zh := benchHeader(b, ModeZstd, level, chunk, c)
						plain := encodedSize(b, &e, zh, c)
						pf := patchFromSize(b, c)
						var n int
						b.SetBytes(int64(len(c.new)))
						b.ResetTimer()
						for b.Loop() {
							n = encodedSize(b, &e, h, c)
						}
						b.ReportMetric(float64(n), "delta-bytes")
						b.ReportMetric(float64(n)/float64(plain), "ratio-to-zstd")
						if pf > 0 {
							b.ReportMetric(float64(pf), "patch-from-bytes")
							b.ReportMetric(float64(n)/float64(pf), "ratio-vs-patch-from")
						}
					})
				}
			}
		}
	}
}

// BenchmarkDeltaMargin measures how much of the base around a chunk's own
// offset its dictionary should span; it chose DefaultDeltaMargin.
func BenchmarkDeltaMargin(b *testing.B) {
	for _, c := range benchCorpus(b) {
		for _, chunk := range []int{64 << 10, 1 << 20} {
			for _, margin := range []int{0, 4 << 10, 16 << 10, chunk / 4, chunk, 4 * chunk} {
				b.Run(fmt.Sprintf("corpus=%s/chunk=%dKiB/margin=%dKiB", c.name, chunk>>10, margin>>10), func(b *testing.B) {
					var e Encoder
					h := benchHeader(b, ModeDeltaZstd, LevelBest, chunk, c)
					h.DeltaMargin = margin
					pf := patchFromSize(b, c)
					var n int
					b.SetBytes(int64(len(c.new)))
					for b.Loop() {
						n = encodedSize(b, &e, h, c)
					}
					b.ReportMetric(float64(n), "delta-bytes")
					if pf > 0 {
						b.ReportMetric(float64(n)/float64(pf), "ratio-vs-patch-from")
					}
				})
			}
		}
	}
}

// BenchmarkEncode reports MB/s per level for plain zstd (ModeZstd, 1 MiB
// chunks) of each corpus's new version, with the compression ratio
// (plain bytes / encoded bytes) measured in the same run.
func BenchmarkEncode(b *testing.B) {
	for _, c := range benchCorpus(b) {
		var e Encoder
		for _, level := range Levels() {
			b.Run(fmt.Sprintf("corpus=%s/level=%s", c.name, level), func(b *testing.B) {
				h := benchHeader(b, ModeZstd, level, 1<<20, c)
				var n int
				b.SetBytes(int64(len(c.new)))
				for b.Loop() {
					n = encodedSize(b, &e, h, c)
				}
				b.ReportMetric(float64(len(c.new))/float64(n), "compression-ratio")
			})
		}
	}
}

// BenchmarkDecode reports MB/s per level: plain zstd and delta+zstd of the
// JSON corpus, with the compression ratio of what it decodes.
func BenchmarkDecode(b *testing.B) {
	c := benchCorpus(b)[1]
	for _, mode := range []Mode{ModeZstd, ModeDeltaZstd} {
		for _, level := range Levels() {
			b.Run(fmt.Sprintf("mode=%s/level=%s", mode, level), func(b *testing.B) {
				var e Encoder
				h := benchHeader(b, mode, level, 1<<20, c)
				var base *Base
				if mode.IsDelta() {
					base = NewBase(c.base)
				}
				var enc bytes.Buffer
				if err := e.EncodeStream(context.Background(), &enc, bytes.NewReader(c.new), &h, base, 0); err != nil {
					b.Fatal(err)
				}
				var d Decoder
				b.SetBytes(int64(len(c.new)))
				for b.Loop() {
					if err := d.DecodeStream(context.Background(), io.Discard, bytes.NewReader(enc.Bytes()), &h, base); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(c.new))/float64(enc.Len()), "compression-ratio")
			})
		}
	}
}

// BenchmarkDeltaChunkCost splits a 1 MiB delta chunk's CPU into its parts:
// the matcher (indexing the base region and finding the ops) and the whole
// delta encode (matcher plus zstd of the ops and literal streams), against
// encoding the same chunk as plain zstd in the same run. unrelated-diff-us
// is the matcher on the same chunk against random bytes, its worst case: no
// copy anywhere.
func BenchmarkDeltaChunkCost(b *testing.B) {
	c := benchCorpus(b)[1]
	const chunk = 1 << 20
	off := len(c.new) / 2
	plain := c.new[off : off+chunk]
	base := NewBase(c.base)
	region := c.base[off-8<<10 : off+chunk+8<<10]
	noise := rapidBytes(len(region))
	for _, level := range []Level{LevelDefault, LevelBetter, LevelBest} {
		b.Run("level="+level.String(), func(b *testing.B) {
			var e Encoder
			h := benchHeader(b, ModeDeltaZstd, level, chunk, c)
			measure := func(f func()) float64 {
				const n = 5
				start := time.Now()
				for range n {
					f()
				}
				return float64(time.Since(start).Nanoseconds()) / n
			}
			for b.Loop() {
				diff := measure(func() { e.ops.diff(plain, region, 8<<10, 8<<10) })
				unrelated := measure(func() { e.ops.diff(plain, noise, 8<<10, 8<<10) })
				delta := measure(func() {
					if _, err := e.deltaBody(nil, &h, int64(off), plain, base); err != nil {
						b.Fatal(err)
					}
				})
				zs := measure(func() {
					if _, err := e.plainFrame(nil, level, false, plain); err != nil {
						b.Fatal(err)
					}
				})
				b.ReportMetric(diff/1e3, "diff-us")
				b.ReportMetric(unrelated/1e3, "unrelated-diff-us")
				b.ReportMetric(delta/1e3, "delta-us")
				b.ReportMetric(zs/1e3, "zstd-us")
				b.ReportMetric(delta/zs, "delta-vs-zstd-cpu")
			}
		})
	}
}
