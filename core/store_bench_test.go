package core

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
)

// BenchmarkStoreCommit measures Apply of a state op (hash check, chunked
// write, version metadata, applied index, fsync) against the baseline of a
// raw bbolt Update putting the same bytes under one key in another file in
// the same directory, interleaved in the same loop so both see the same
// disk and CPU load. It reports both latencies and their ratio.
func BenchmarkStoreCommit(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{"1KiB", 1 << 10}, {"1MiB", 1 << 20}} {
		b.Run(size.name, func(b *testing.B) {
			dir := b.TempDir()
			s, err := Open(filepath.Join(dir, "core.db"), Config{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			raw, err := bolt.Open(filepath.Join(dir, "raw.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
			if err != nil {
				b.Fatal(err)
			}
			defer raw.Close()
			if err := raw.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
				b.Fatal(err)
			}
			data := payload(1, size.n)
			var storeT, rawT time.Duration
			i := uint64(0)
			b.SetBytes(int64(size.n))
			b.ResetTimer()
			for b.Loop() {
				i++
				// 64 keys in rotation: most applies replace a version.
				key := "k/" + string(rune('a'+i%64))
				binary.BigEndian.PutUint64(data, i) // every op distinct
				h := hdrFor(opID(i), edgesync.StateOp, key, data)
				t0 := time.Now()
				if _, err := s.Apply("bench", h, bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if err := raw.Update(func(tx *bolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte(key), data) }); err != nil {
					b.Fatal(err)
				}
				storeT += t1.Sub(t0)
				rawT += time.Since(t1)
			}
			n := float64(b.N)
			b.ReportMetric(float64(storeT.Nanoseconds())/n, "store-ns/op")
			b.ReportMetric(float64(rawT.Nanoseconds())/n, "raw-bbolt-ns/op")
			b.ReportMetric(float64(storeT)/float64(rawT), "ratio-vs-raw-bbolt")
		})
	}
}

// genReader yields n pseudo-random bytes without holding them.
type genReader struct {
	rng  *rand.ChaCha8
	left int64
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	_, _ = g.rng.Read(p)
	g.left -= int64(len(p))
	return len(p), nil
}

// heapPeak samples the live heap every millisecond until stop is closed
// and returns the peak seen minus the heap at start.
func heapPeak(stop <-chan struct{}, out chan<- uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	out <- uint64(peakOf(stop, time.Millisecond, func() int64 {
		metrics.Read(sample)
		return int64(sample[0].Value.Uint64())
	}))
}

// peakOf reads a figure at once and then every d until stop is closed,
// and returns the most it rose above its first reading.
func peakOf(stop <-chan struct{}, d time.Duration, read func() int64) int64 {
	base, peak := read(), int64(0)
	tick := time.NewTicker(d)
	defer tick.Stop()
	for {
		peak = max(peak, read()-base)
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

// BenchmarkStoreLargeApplyMemory applies a 64 MiB op from a generating
// reader and reports the peak live heap it needed, against the baseline of
// io.ReadAll on the same reader (what holding the object whole costs),
// measured in the same run. The store stages through InlineMax-sized
// buffers, so the ratio should be far below 1.
func BenchmarkStoreLargeApplyMemory(b *testing.B) {
	const size = 64 << 20
	s, err := Open(filepath.Join(b.TempDir(), "core.db"), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	hashOf := func(seed byte) [32]byte {
		h := sha256.New()
		_, _ = io.Copy(h, &genReader{rng: rand.NewChaCha8([32]byte{seed}), left: size})
		return [32]byte(h.Sum(nil))
	}
	measure := func(fn func()) uint64 {
		runtime.GC()
		stop, out := make(chan struct{}), make(chan uint64)
		go heapPeak(stop, out)
		fn()
		close(stop)
		return <-out
	}
	var storePeak, rawPeak uint64
	i := uint64(0)
	for b.Loop() {
		i++
		seed := byte(i)
		h := PartialHeader{OpID: opID(i), Key: "big", Kind: edgesync.StateOp, Priority: edgesync.Background, Size: size, Hash: hashOf(seed)}
		storePeak = max(storePeak, measure(func() {
			if _, err := s.Apply("bench", h, &genReader{rng: rand.NewChaCha8([32]byte{seed}), left: size}); err != nil {
				b.Fatal(err)
			}
		}))
		rawPeak = max(rawPeak, measure(func() {
			all, err := io.ReadAll(&genReader{rng: rand.NewChaCha8([32]byte{seed}), left: size})
			if err != nil || len(all) != size {
				b.Fatal(err)
			}
		}))
	}
	b.ReportMetric(float64(storePeak)/(1<<20), "store-peak-heap-MiB")
	b.ReportMetric(float64(rawPeak)/(1<<20), "readall-peak-heap-MiB")
	b.ReportMetric(float64(storePeak)/float64(rawPeak), "ratio-vs-readall")
}
