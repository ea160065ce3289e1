package outbox

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/boltfile"
)

// On-disk layout (format version 2). Five top-level buckets:
//
//	meta        "format" = "edge-sync-outbox", "version" = uint32, "chunk_size" = uint32,
//	            "sum_block" = uint32 (bytes per checksummed block, version 2)
//	ops         <op id, 16 bytes> -> op record (see encodeOp)
//	chunks      <op id> -> bucket of <uint32 index> -> bucket of
//	            "d" -> up to chunk_size bytes, "s" -> block checksums (see blockSums)
//	pending     <op id> -> empty: chunks written by an Enqueue not yet published
//	quarantine  <op id> -> quarantine record (see encodeQuarantine); the op's
//	            chunks stay under chunks/<op id> for forensics
//
// An op is visible only once its ops record exists; the record and the last
// chunks are written in one transaction, so a crash never shows half an op.
// Open deletes the chunks of every pending id (a crashed large Enqueue).
//
// Each chunk lives alone in its own nested bucket, under a bucket per op:
// bbolt never splits a leaf of four or fewer items nor leaves fewer than two
// in one, so big values sharing a bucket would make every put and delete
// rewrite one to three neighbouring chunks (write amplification, more memory
// per transaction, and deletes that need megabytes of contiguous free space
// on a full disk). An op's bucket is dropped whole with DeleteBucket.
//
// Version 1 had no "sum_block", no "s" and no quarantine bucket, and its
// op records (record version 1) no payload hash and no checksum. Open
// upgrades a version 1 file in place by adding them; the ops already in it
// keep their version 1 records and are read without checks (see
// docs/outbox.md#integrity).
const (
	formatMagic   = "edge-sync-outbox"
	formatVersion = 2

	// defaultSumBlock is how many payload bytes one checksum covers: a
	// read checks only the blocks it touches, so a small read of a large
	// chunk costs at most two extra blocks of CRC.
	defaultSumBlock = 16 << 10
)

var (
	bucketMeta       = []byte("meta")
	bucketOps        = []byte("ops")
	bucketChunks     = []byte("chunks")
	bucketPending    = []byte("pending")
	bucketQuarantine = []byte("quarantine")

	keyFormat    = []byte("format")
	keyVersion   = []byte("version")
	keyChunkSize = []byte("chunk_size")
	keySumBlock  = []byte("sum_block")
)

// layout is what a file's meta bucket says about how it is written.
type layout struct {
	version   uint32
	chunkSize int
	sumBlock  int // 0 in a version 1 file
}

// The op record's kind codes (byte 2, see encodeOp). They were written
// before edgesync.OpKind existed and differ from its values; kindCode and
// kindOfCode are the one place that maps between them, so files written
// by any version read the same.
const (
	codeEvent byte = 0
	codeState byte = 1
)

// kindCode returns the on-disk code of k; the caller has checked k.
func kindCode(k edgesync.OpKind) byte {
	if k == edgesync.StateOp {
		return codeState
	}
	return codeEvent
}

// kindOfCode returns the kind an on-disk code stands for; ok is false for
// a code no version wrote.
func kindOfCode(c byte) (k edgesync.OpKind, ok bool) {
	switch c {
	case codeEvent:
		return edgesync.EventOp, true
	case codeState:
		return edgesync.StateOp, true
	}
	return 0, false
}

// keyData holds a chunk's bytes, keySums their block checksums (version 2).
var (
	keyData = []byte("d")
	keySums = []byte("s")
)

// chunkKey is the name of chunk i's bucket inside an op's chunk bucket.
func chunkKey(i uint32) []byte { return binary.BigEndian.AppendUint32(make([]byte, 0, 4), i) }

func numChunks(size int64, chunkSize int) uint32 {
	return uint32((size + int64(chunkSize) - 1) / int64(chunkSize))
}

// guard runs fn with memory faults turned into panics and recovers any
// panic as ErrCorrupt: bbolt panics (or faults) on some damaged pages, and a
// damaged file must give an error, not a crash.
func guard(what string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: bbolt failed on a damaged page (%v): %w", what, r, ErrCorrupt)
		}
	}()
	return fn()
}

// checkHeader checks the bbolt meta pages of an existing file before bbolt
// maps it, so that a truncated file gives ErrCorrupt instead of a SIGBUS.
func checkHeader(path string) error {
	err := boltfile.Check(path)
	if errors.Is(err, boltfile.ErrDamaged) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}

// mapOpenErr maps bbolt's Open errors to the outbox's sentinels.
func mapOpenErr(err error) error {
	switch {
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	case errors.Is(err, berrors.ErrTimeout):
		return fmt.Errorf("%w (is the agent running?): %w", ErrLocked, err)
	}
	return err
}

// mapWriteErr maps errors of a write transaction (full disk) to sentinels.
func mapWriteErr(err error) error {
	if errors.Is(err, berrors.ErrMaxSizeReached) || isENOSPC(err) {
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	}
	return err
}

// initOrCheck creates the buckets of a new file (in a writable tx) or checks
// an existing one, and returns the file's layout. A version 1 file passes
// as it is; upgrade brings it to version 2.
func initOrCheck(tx *bolt.Tx, chunkSize int) (layout, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		var other []byte
		// ForEach fails only when its function does, and this one never
		// does.
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if other == nil {
				other = append([]byte(nil), name...)
			}
			return nil
		})
		if other != nil {
			return layout{}, fmt.Errorf("bbolt file has bucket %q and no outbox meta: %w", other, ErrForeign)
		}
		l := layout{version: formatVersion, chunkSize: chunkSize, sumBlock: defaultSumBlock}
		if !tx.Writable() {
			return l, nil
		}
		var err error
		if meta, err = tx.CreateBucket(bucketMeta); err != nil {
			return layout{}, err
		}
		for _, kv := range [][2][]byte{
			{keyFormat, []byte(formatMagic)},
			{keyVersion, binary.BigEndian.AppendUint32(nil, formatVersion)},
			{keyChunkSize, binary.BigEndian.AppendUint32(nil, uint32(chunkSize))},
			{keySumBlock, binary.BigEndian.AppendUint32(nil, defaultSumBlock)},
		} {
			if err := meta.Put(kv[0], kv[1]); err != nil {
				return layout{}, err
			}
		}
		for _, name := range [][]byte{bucketOps, bucketChunks, bucketPending, bucketQuarantine} {
			if _, err := tx.CreateBucket(name); err != nil {
				return layout{}, err
			}
		}
		return l, nil
	}
	if f := meta.Get(keyFormat); !bytes.Equal(f, []byte(formatMagic)) {
		return layout{}, fmt.Errorf("meta format is %q, want %q: %w", f, formatMagic, ErrForeign)
	}
	v := meta.Get(keyVersion)
	if len(v) != 4 {
		return layout{}, fmt.Errorf("meta version is %d bytes, want 4: %w", len(v), ErrCorrupt)
	}
	var l layout
	if l.version = binary.BigEndian.Uint32(v); l.version > formatVersion {
		return layout{}, fmt.Errorf("file has format version %d, this build reads up to %d: %w", l.version, formatVersion, ErrVersion)
	} else if l.version == 0 {
		return layout{}, fmt.Errorf("meta version is 0: %w", ErrCorrupt)
	}
	cs := meta.Get(keyChunkSize)
	if len(cs) != 4 || binary.BigEndian.Uint32(cs) == 0 {
		return layout{}, fmt.Errorf("meta chunk_size is bad (%x): %w", cs, ErrCorrupt)
	}
	l.chunkSize = int(binary.BigEndian.Uint32(cs))
	buckets := [][]byte{bucketOps, bucketChunks, bucketPending}
	if l.version >= 2 {
		sb := meta.Get(keySumBlock)
		if len(sb) != 4 || binary.BigEndian.Uint32(sb) == 0 || binary.BigEndian.Uint32(sb) > 1<<30 {
			return layout{}, fmt.Errorf("meta sum_block is bad (%x): %w", sb, ErrCorrupt)
		}
		l.sumBlock = int(binary.BigEndian.Uint32(sb))
		buckets = append(buckets, bucketQuarantine)
	}
	for _, name := range buckets {
		if tx.Bucket(name) == nil {
			return layout{}, fmt.Errorf("bucket %q is missing: %w", name, ErrCorrupt)
		}
	}
	return l, nil
}

// upgrade brings a version 1 file to version 2: new ops are written with
// checksums from now on; the ops it holds keep their version 1 records.
func upgrade(tx *bolt.Tx) (layout, error) {
	meta := tx.Bucket(bucketMeta)
	if err := meta.Put(keySumBlock, binary.BigEndian.AppendUint32(nil, defaultSumBlock)); err != nil {
		return layout{}, err
	}
	if _, err := tx.CreateBucketIfNotExists(bucketQuarantine); err != nil {
		return layout{}, err
	}
	if err := meta.Put(keyVersion, binary.BigEndian.AppendUint32(nil, formatVersion)); err != nil {
		return layout{}, err
	}
	return initOrCheck(tx, 0)
}
