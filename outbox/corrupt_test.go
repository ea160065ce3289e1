package outbox

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	bolt "go.etcd.io/bbolt"
)

// fillFile makes an outbox with ops of several sizes and returns the file's
// path and the payloads by ID.
func fillFile(t *testing.T) (string, map[edgesync.OpID][]byte) {
	t.Helper()
	path := tempPath(t)
	o, err := Open(path, Options{chunkSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	want := map[edgesync.OpID][]byte{}
	for i := range 40 {
		data := payloadOf(byte(i), i*613)
		op := enq(t, o, NewOp{Endpoint: "e", Key: fmt.Sprint(i), Priority: edgesync.Priority(i % 6), Payload: bytes.NewReader(data)})
		want[op.ID] = data
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	return path, want
}

// verifyAll opens path and checks that every op in want is there intact.
func verifyAll(t *testing.T, path string, want map[edgesync.OpID][]byte) {
	t.Helper()
	o := openT(t, path, Options{})
	for id, data := range want {
		if got := readAll(t, o, id); !bytes.Equal(got, data) {
			t.Fatalf("payload %s differs", id)
		}
	}
	if s, _ := o.Stats(); s.Total.Ops != len(want) {
		t.Fatalf("%d ops, want %d", s.Total.Ops, len(want))
	}
	_ = o.Close()
}

func editDB(t *testing.T, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
}

// openFails checks that Open fails with want, mentions text, and leaves
// the file byte for byte as it was.
func openFails(t *testing.T, path string, want error, text string) {
	t.Helper()
	before, _ := os.ReadFile(path)
	o, err := Open(path, Options{LockTimeout: time.Second})
	if err == nil {
		_ = o.Close()
		t.Fatalf("Open succeeded, want %v", want)
	}
	if !errors.Is(err, want) || !strings.Contains(err.Error(), text) {
		t.Fatalf("Open: %v; want %v mentioning %q", err, want, text)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("failed Open modified the file")
	}
}

func TestOpenGarbage(t *testing.T) {
	path := tempPath(t)
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i*31 + i>>9)
	}
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	openFails(t, path, ErrCorrupt, path)
	if err := os.WriteFile(path, []byte("hello, not a database\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openFails(t, path, ErrCorrupt, "")
}

func TestOpenTruncated(t *testing.T) {
	path, want := fillFile(t)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hwm := highWater(t, full)
	for _, size := range []int{1, 100, 4096, 8192, 3 * 4096, hwm / 2, hwm - 4096, hwm - 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			p := tempPath(t)
			if err := os.WriteFile(p, full[:size], 0o600); err != nil {
				t.Fatal(err)
			}
			openFails(t, p, ErrCorrupt, "")
		})
	}
	// Cutting only the unused tail bbolt preallocated loses nothing.
	p := tempPath(t)
	if err := os.WriteFile(p, full[:hwm], 0o600); err != nil {
		t.Fatal(err)
	}
	verifyAll(t, p, want)
	verifyAll(t, path, want)
}

// highWater returns the bytes the newest meta page says the data uses.
func highWater(t *testing.T, file []byte) int {
	t.Helper()
	var best, bestTx uint64
	for _, off := range []int{0, 4096} {
		m := file[off+16:]
		if binary.LittleEndian.Uint32(m) != 0xED0CDAED {
			continue
		}
		ps, pgid, txid := binary.LittleEndian.Uint32(m[8:]), binary.LittleEndian.Uint64(m[40:]), binary.LittleEndian.Uint64(m[48:])
		if txid >= bestTx {
			best, bestTx = pgid*uint64(ps), txid
		}
	}
	if best == 0 || best > uint64(len(file)) {
		t.Fatalf("cannot find the high-water mark (%d of %d bytes)", best, len(file))
	}
	return int(best)
}

func TestOpenForeign(t *testing.T) {
	path := tempPath(t)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.Update(func(tx *bolt.Tx) error {
		b, _ := tx.CreateBucket([]byte("widgets"))
		return b.Put([]byte("a"), []byte("b"))
	})
	_ = db.Close()
	openFails(t, path, ErrForeign, "widgets")

	path2, _ := fillFile(t)
	editDB(t, path2, func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte("something-else")) })
	openFails(t, path2, ErrForeign, "something-else")
}

func TestOpenNewerVersion(t *testing.T) {
	path, want := fillFile(t)
	editDB(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyVersion, binary.BigEndian.AppendUint32(nil, formatVersion+1))
	})
	openFails(t, path, ErrVersion, fmt.Sprintf("version %d", formatVersion+1))
	// Putting the version back shows nothing was lost.
	editDB(t, path, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyVersion, binary.BigEndian.AppendUint32(nil, formatVersion))
	})
	verifyAll(t, path, want)
}

func TestOpenDamagedRecords(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		edit func(tx *bolt.Tx, id edgesync.OpID) error
		text string
	}{
		"bad record": {func(tx *bolt.Tx, id edgesync.OpID) error {
			return tx.Bucket(bucketOps).Put(id[:], []byte{1, 2, 3})
		}, "record is 3 bytes"},
		"bad priority": {func(tx *bolt.Tx, id edgesync.OpID) error {
			// A record that passes its checksum but holds what no version
			// writes is a bug, not disk damage: the file is refused.
			rec := bytes.Clone(tx.Bucket(bucketOps).Get(id[:]))
			rec[1] = 9
			return tx.Bucket(bucketOps).Put(id[:], reseal(id, rec))
		}, "bad priority"},
		"missing chunk": {func(tx *bolt.Tx, id edgesync.OpID) error {
			return tx.Bucket(bucketChunks).Bucket(id[:]).DeleteBucket(chunkKey(1))
		}, "chunk 1"},
		"short key": {func(tx *bolt.Tx, id edgesync.OpID) error {
			return tx.Bucket(bucketOps).Put([]byte("short"), []byte{1})
		}, "ops key"},
		"missing bucket": {func(tx *bolt.Tx, id edgesync.OpID) error {
			return tx.DeleteBucket(bucketPending)
		}, "pending"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			path, want := fillFile(t)
			var big edgesync.OpID
			for id, data := range want {
				if len(data) > 3*4096 {
					big = id
					break
				}
			}
			editDB(t, path, func(tx *bolt.Tx) error { return c.edit(tx, big) })
			openFails(t, path, ErrCorrupt, c.text)
		})
	}
}

// reseal recomputes the checksum of a version 2 record edited in place.
func reseal(id edgesync.OpID, rec []byte) []byte {
	body := rec[:len(rec)-4]
	return binary.BigEndian.AppendUint32(bytes.Clone(body), recordSum(id, body))
}

// TestOpenFlippedBytes damages random bytes of data pages. Open (and, if it
// succeeds, reading everything) must return errors, never panic or crash.
func TestOpenFlippedBytes(t *testing.T) {
	t.Parallel()
	path, _ := fillFile(t)
	full, _ := os.ReadFile(path)
	hwm := highWater(t, full)
	seeds := 30
	if testing.Short() {
		seeds = 10
	}
	var failed, opened int
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		damaged := bytes.Clone(full)
		for range 1 + rng.IntN(32) {
			damaged[2*4096+rng.IntN(hwm-2*4096)] ^= byte(1 + rng.IntN(255))
		}
		p := tempPath(t)
		if err := os.WriteFile(p, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		o, err := Open(p, Options{})
		if err != nil {
			failed++
			continue
		}
		opened++
		for prio := range edgesync.Priority(edgesync.NumPriorities) {
			ops, _ := o.List("", prio, 0)
			for _, op := range ops {
				if pl, err := o.OpenPayload(op.ID); err == nil {
					buf := make([]byte, 8192)
					for off := int64(0); off < pl.Size(); off += int64(len(buf)) {
						if _, err := pl.ReadAt(buf, off); err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotFound) {
							break
						}
					}
				}
			}
		}
		_, _ = o.Enqueue(context.Background(), NewOp{Endpoint: "e", Payload: strings.NewReader("after damage")})
		_ = o.Close()
	}
	t.Logf("%d damaged files refused at Open, %d opened (damage in payload bytes only)", failed, opened)
}

func TestDiskFull(t *testing.T) {
	path := tempPath(t)
	const maxFile = 2 << 20
	o := openT(t, path, Options{MaxFileSize: maxFile, chunkSize: 64 << 10, stageChunks: 1})
	want := map[edgesync.OpID][]byte{}
	var full error
	for i := range 200 {
		data := payloadOf(byte(i), 40<<10)
		op, err := o.Enqueue(context.Background(), NewOp{Endpoint: "e", Key: fmt.Sprint(i), Payload: bytes.NewReader(data)})
		if err != nil {
			full = err
			break
		}
		want[op.ID] = data
	}
	t.Logf("full after %d ops: %v", len(want), full)
	if !errors.Is(full, ErrNoSpace) {
		t.Fatalf("filling a %d-byte file: got %v, want ErrNoSpace", maxFile, full)
	}
	if len(want) == 0 {
		t.Fatal("not even one op fit")
	}
	// A large multi-transaction op fails cleanly too.
	_, err := o.Enqueue(context.Background(), NewOp{Endpoint: "e", Payload: bytes.NewReader(make([]byte, 1<<20))})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("large enqueue on a full disk: %v, want ErrNoSpace", err)
	}
	if s, _ := o.Stats(); s.Total.Ops != len(want) {
		t.Fatalf("stats count %d after failures, want %d", s.Total.Ops, len(want))
	}
	for id, data := range want {
		if got := readAll(t, o, id); !bytes.Equal(got, data) {
			t.Fatalf("payload %s unreadable after disk full", id)
		}
	}
	// Acking frees space for new ops.
	var some []edgesync.OpID
	for id := range want {
		if len(some) < len(want)/2 {
			some = append(some, id)
			delete(want, id)
		}
	}
	if err := o.Ack(some...); err != nil {
		t.Fatalf("Ack on a full disk: %v", err)
	}
	op := enq(t, o, NewOp{Endpoint: "e", Payload: bytes.NewReader(payloadOf(1, 40<<10))})
	want[op.ID] = payloadOf(1, 40<<10)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)
	verifyAll(t, path, want)
}
