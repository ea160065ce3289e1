package core

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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
				h := hdrFor(opID(i), KindState, key, data)
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
