package outbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"
)

// SalvageReport says what Salvage copied and what it could not.
type SalvageReport struct {
	// Copied and Bytes count the ops copied and their payload bytes.
	Copied int   `json:"copied"`
	Bytes  int64 `json:"bytes"`
	// Unchecked counts the copied ops stored by format version 1: copied
	// as read, with nothing to check them against.
	Unchecked int `json:"unchecked"`
	// Lost lists the ops that were not copied: their record or payload is
	// damaged or unreadable.
	Lost []Damage `json:"lost"`
	// Quarantined lists the ops that were in quarantine in the old file;
	// they are not copied (they stay in the old file).
	Quarantined []Damage `json:"quarantined"`
	// Unlisted is set when bbolt could not read the whole list of ops:
	// ops after the damaged page are lost and not named.
	Unlisted bool `json:"unlisted,omitempty"`
}

// Salvage copies every op of the outbox file src that reads back intact
// into a new outbox file dst, and reports the others. Each copied op keeps
// its ID (so the core still de-duplicates it), endpoint, key, priority,
// kind, summary, expiry and hash; its payload is checked block by block
// and against its SHA-256 as it is copied. src is opened read-only, as
// VerifyFile does, and never written; dst must not exist. It is for a src
// whose bbolt structure is damaged, which Open refuses.
func Salvage(ctx context.Context, src, dst string, opts Options) (SalvageReport, error) {
	var r SalvageReport
	if _, err := os.Lstat(dst); !errors.Is(err, os.ErrNotExist) {
		return r, fmt.Errorf("salvage into %s: the file exists (or cannot be checked: %v): %w", dst, err, ErrInvalid)
	}
	f, err := openFile(src, opts)
	if err != nil {
		return r, fmt.Errorf("salvage %s: %w", src, err)
	}
	defer f.db.Close()
	r.Quarantined, r.Unlisted = f.quarantined, f.listErr != nil
	out, err := Open(dst, opts)
	if err != nil {
		return r, fmt.Errorf("salvage into %s: %w", dst, err)
	}
	for _, s := range f.ops {
		if err := ctx.Err(); err != nil {
			out.Close()
			return r, fmt.Errorf("salvage: %w", err)
		}
		op, err := decodeOp(s.id, s.rec)
		if err == nil {
			err = f.view(func(tx *bolt.Tx) error { return checkChunks(tx.Bucket(bucketChunks), &op, f.l) })
		}
		if err == nil {
			err = out.restore(ctx, op, &chunkReader{f: f, op: &op})
		}
		if err != nil {
			op, _ := untrustedOp(s.id, s.rec)
			r.Lost = append(r.Lost, damageOf(&op, reasonOf(err)))
			continue
		}
		r.Copied++
		r.Bytes += op.Size
		if op.Hash == [32]byte{} {
			r.Unchecked++
		}
	}
	if err := out.Close(); err != nil {
		return r, fmt.Errorf("salvage into %s: %w", dst, err)
	}
	return r, nil
}

// restore stores op as Enqueue would, but under its own ID and metadata,
// with the payload read from r. An op that had a hash must hash to it
// again, one without gets one now.
func (o *Outbox) restore(ctx context.Context, op Op, r io.Reader) error {
	if err := o.begin(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer o.inflight.Done()
	want, size := op.Hash, op.Size
	op.Hash, op.Size = [32]byte{}, 0
	o.gen.Observe(op.ID)
	if err := o.store(ctx, &op, r, want); err != nil {
		return err
	}
	if op.Size != size {
		// Only possible for an op without a hash: store checked the rest.
		o.log.Warn("restored op is not the size its record says", "op", op.ID.String(), "size", op.Size, "record", size)
	}
	return nil
}

// chunkReader reads an op's payload from a file opened by openFile, one
// chunk per read transaction, checking each chunk's blocks as it goes.
type chunkReader struct {
	f   *file
	op  *Op
	i   uint32
	buf []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.buf) == 0 {
		if c.i == numChunks(c.op.Size, c.f.l.chunkSize) {
			return 0, io.EOF
		}
		err := c.f.view(func(tx *bolt.Tx) error {
			var data, sums []byte
			if ob := tx.Bucket(bucketChunks).Bucket(c.op.ID[:]); ob != nil {
				if cb := ob.Bucket(chunkKey(c.i)); cb != nil {
					data, sums = cb.Get(keyData), cb.Get(keySums)
				}
			}
			if data == nil {
				return fmt.Errorf("chunk %d is missing: %w", c.i, ErrCorrupt)
			}
			if c.op.Hash != [32]byte{} {
				off := int64(c.i) * int64(c.f.l.chunkSize)
				if err := checkBlocks(c.op.ID, c.i, off, data, sums, 0, len(data), c.f.l.sumBlock); err != nil {
					return err
				}
			}
			c.buf = append(c.buf[:0], data...)
			return nil
		})
		if err != nil {
			return 0, err
		}
		c.i++
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}
