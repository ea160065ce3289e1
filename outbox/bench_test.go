package outbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	bolt "go.etcd.io/bbolt"
)

// opsPerRound is how many ops each producer enqueues per b.Loop iteration;
// producers run freely within a round, so group commit is measured as it
// happens, not in lockstep.
const opsPerRound = 8

// rounds runs one round: each of producers goroutines calls fn opsPerRound times.
func round(producers int, fn func(p int) error) error {
	var wg sync.WaitGroup
	var first atomic.Pointer[error]
	for p := range producers {
		wg.Go(func() {
			for range opsPerRound {
				if err := fn(p); err != nil {
					first.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return nil
}

func benchOpts() Options {
	return Options{MaxOps: 1 << 30, MaxBytes: 1 << 50, LockTimeout: time.Second}
}

// BenchmarkEnqueue measures durable Enqueue throughput against raw bbolt
// puts of the same payloads into one bucket, in the same run: every b.Loop
// iteration runs one round of ours (timed) and then, with the timer
// stopped, one round of raw DB.Batch puts (bbolt's defaults: 10 ms
// MaxBatchDelay) and one of raw DB.Update per op. Interleaving pairs the
// measurements, so disk noise from other processes hits all three alike.
// ratio-vs-bbolt is our ops/s over raw Batch ops/s (higher is better);
// ratio-vs-bbolt-update is over one Update per op.
func BenchmarkEnqueue(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, producers := range []int{1, 8} {
			b.Run(fmt.Sprintf("%dKiB/%dproducers", size>>10, producers), func(b *testing.B) {
				data := payloadOf(1, size)
				o := openBench(b)
				raw := openRaw(b)
				ctx := context.Background()
				var seq atomic.Uint64
				rawPut := func(batch bool) func(int) error {
					return func(int) error {
						k := binary.BigEndian.AppendUint64(nil, seq.Add(1))
						put := func(tx *bolt.Tx) error { return tx.Bucket(rawBucket).Put(k, data) }
						if batch {
							return raw.Batch(put)
						}
						return raw.Update(put)
					}
				}
				var tOurs, tBatch, tUpdate time.Duration
				timed := func(d *time.Duration, fn func(int) error) {
					start := time.Now()
					if err := round(producers, fn); err != nil {
						b.Fatal(err)
					}
					*d += time.Since(start)
				}
				b.SetBytes(int64(size * producers * opsPerRound))
				for b.Loop() {
					timed(&tOurs, func(p int) error {
						_, err := o.Enqueue(ctx, NewOp{Endpoint: "core", Priority: edgesync.Priority(p % 6), Payload: bytes.NewReader(data)})
						return err
					})
					b.StopTimer()
					timed(&tBatch, rawPut(true))
					timed(&tUpdate, rawPut(false))
					b.StartTimer()
				}
				ops := float64(b.N * producers * opsPerRound)
				b.ReportMetric(ops/tOurs.Seconds(), "ops/s")
				b.ReportMetric(ops/tBatch.Seconds(), "raw-batch-ops/s")
				b.ReportMetric(tBatch.Seconds()/tOurs.Seconds(), "ratio-vs-bbolt")
				b.ReportMetric(tUpdate.Seconds()/tOurs.Seconds(), "ratio-vs-bbolt-update")
			})
		}
	}
}

var rawBucket = []byte("raw")

// openBench opens an outbox with benchOpts in b's temporary directory;
// b's cleanup closes it.
func openBench(b *testing.B) *Outbox {
	o, err := Open(filepath.Join(b.TempDir(), "outbox.db"), benchOpts())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = o.Close() })
	return o
}

func openRaw(b *testing.B) *bolt.DB {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bolt.Options{FreelistType: bolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(rawBucket); return err }); err != nil {
		b.Fatal(err)
	}
	return db
}

// BenchmarkLeaseAck measures the send path: Lease 16 ops, read each payload
// whole through ReaderAt, Ack them in one call. Interleaved in the same
// iterations (timer stopped), the baseline reads the first 16 values of a
// raw bbolt bucket in one View and deletes them in one Update. Refills of
// both queues are not timed.
func BenchmarkLeaseAck(b *testing.B) {
	const batch, refill = 16, 512
	for _, size := range []int{1 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			data := payloadOf(2, size)
			o := openBench(b)
			raw := openRaw(b)
			ctx := context.Background()
			var seq uint64
			fill := func() {
				err := round(refill/opsPerRound/8, func(int) error {
					for range 8 {
						if _, err := o.Enqueue(ctx, NewOp{Endpoint: "core", Payload: bytes.NewReader(data)}); err != nil {
							return err
						}
					}
					return nil
				})
				if err == nil {
					err = raw.Update(func(tx *bolt.Tx) error {
						for range refill {
							seq++
							if err := tx.Bucket(rawBucket).Put(binary.BigEndian.AppendUint64(nil, seq), data); err != nil {
								return err
							}
						}
						return nil
					})
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			fill()
			buf := make([]byte, 32<<10)
			out := make([]byte, size)
			var tOurs, tRaw time.Duration
			b.SetBytes(int64(batch * size))
			for b.Loop() {
				start := time.Now()
				ops, err := o.Lease("core", batch)
				if err != nil || len(ops) != batch {
					b.Fatalf("lease: %d ops, %v", len(ops), err)
				}
				for _, op := range ops {
					p, err := o.OpenPayload(op.ID)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.CopyBuffer(io.Discard, io.NewSectionReader(p, 0, p.Size()), buf); err != nil {
						b.Fatal(err)
					}
				}
				if err := o.Ack(ids(ops)...); err != nil {
					b.Fatal(err)
				}
				tOurs += time.Since(start)

				b.StopTimer()
				start = time.Now()
				var keys [][]byte
				_ = raw.View(func(tx *bolt.Tx) error {
					c := tx.Bucket(rawBucket).Cursor()
					for k, v := c.First(); k != nil && len(keys) < batch; k, v = c.Next() {
						copy(out, v)
						keys = append(keys, bytes.Clone(k))
					}
					return nil
				})
				err = raw.Update(func(tx *bolt.Tx) error {
					for _, k := range keys {
						if err := tx.Bucket(rawBucket).Delete(k); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil || len(keys) != batch {
					b.Fatalf("raw: %d keys, %v", len(keys), err)
				}
				tRaw += time.Since(start)
				if s, _ := o.Stats(); s.Total.Ops < batch {
					fill()
				}
				b.StartTimer()
			}
			ops := float64(b.N * batch)
			b.ReportMetric(ops/tOurs.Seconds(), "ops/s")
			b.ReportMetric(ops/tRaw.Seconds(), "raw-ops/s")
			b.ReportMetric(tRaw.Seconds()/tOurs.Seconds(), "ratio-vs-bbolt")
		})
	}
}

// BenchmarkReadPayload measures ReadAt alone, without fsync in the way:
// one 4 MiB op read end to end in pieces of 32 KiB (io.Copy's buffer, as
// transport.bandwidth.sync.next reads) and 256 KiB (a codec chunk, as the
// sender reads). Each ReadAt is a short View that, since format version 2,
// also checks the CRC-32C of the 16 KiB blocks it returns. Interleaved in
// the same iterations (timer stopped), the baseline reads the same pieces
// from raw bbolt values of 1 MiB, one View per piece.
// ratio-vs-bbolt is raw time over ours (higher is better).
func BenchmarkReadPayload(b *testing.B) {
	const size, chunk = 4 << 20, 1 << 20
	data := payloadOf(3, size)
	for _, piece := range []int{32 << 10, 256 << 10} {
		b.Run(fmt.Sprintf("%dKiB", piece>>10), func(b *testing.B) {
			o := openBench(b)
			op, err := o.Enqueue(context.Background(), NewOp{Endpoint: "core", Payload: bytes.NewReader(data)})
			if err != nil {
				b.Fatal(err)
			}
			p, err := o.OpenPayload(op.ID)
			if err != nil {
				b.Fatal(err)
			}
			raw := openRaw(b)
			if err := raw.Update(func(tx *bolt.Tx) error {
				for i := 0; i < size/chunk; i++ {
					if err := tx.Bucket(rawBucket).Put(binary.BigEndian.AppendUint32(nil, uint32(i)), data[i*chunk:(i+1)*chunk]); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, piece)
			var tOurs, tRaw time.Duration
			b.SetBytes(size)
			for b.Loop() {
				start := time.Now()
				for off := 0; off < size; off += piece {
					if n, err := p.ReadAt(buf, int64(off)); n != piece || (err != nil && err != io.EOF) {
						b.Fatalf("ReadAt(%d): %d, %v", off, n, err)
					}
				}
				tOurs += time.Since(start)
				b.StopTimer()
				start = time.Now()
				for off := 0; off < size; off += piece {
					_ = raw.View(func(tx *bolt.Tx) error {
						v := tx.Bucket(rawBucket).Get(binary.BigEndian.AppendUint32(nil, uint32(off/chunk)))
						copy(buf, v[off%chunk:])
						return nil
					})
				}
				tRaw += time.Since(start)
				b.StartTimer()
			}
			b.ReportMetric(tRaw.Seconds()/tOurs.Seconds(), "ratio-vs-bbolt")
		})
	}
}
