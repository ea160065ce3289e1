package outbox

import (
	"errors"
	"fmt"
	"io"

	edgesync "github.com/edge-sync/edge-sync"
	bolt "go.etcd.io/bbolt"
)

// Payload reads one op's payload. Each ReadAt runs its own short bbolt read
// transaction, so holding a Payload never pins the file; once the op is acked
// or dropped, ReadAt returns ErrNotFound.
//
// ReadAt checks the block checksums of every byte it returns (ops stored
// by format version 1 have none). When a block fails, it returns no bytes
// and an error wrapping ErrDamaged, and the op is quarantined.
type Payload struct {
	o      *Outbox
	id     edgesync.OpID
	size   int64
	summed bool // the op's chunks carry block checksums
}

var _ io.ReaderAt = (*Payload)(nil)

// OpenPayload returns a reader of op id's payload, or ErrNotFound.
func (o *Outbox) OpenPayload(id edgesync.OpID) (*Payload, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, fmt.Errorf("open payload: %w", ErrClosed)
	}
	e := o.idx.ops[id]
	if e == nil {
		return nil, fmt.Errorf("open payload %s: %w", id, ErrNotFound)
	}
	return &Payload{o: o, id: id, size: e.op.Size, summed: e.op.Hash != [32]byte{}}, nil
}

// Size returns the payload's length in bytes.
func (p *Payload) Size() int64 { return p.size }

// ID returns the op's ID.
func (p *Payload) ID() edgesync.OpID { return p.id }

// ReadAt implements io.ReaderAt over the stored chunks.
func (p *Payload) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read payload %s: offset %d is negative: %w", p.id, off, ErrInvalid)
	}
	if err := p.o.begin(); err != nil {
		return 0, fmt.Errorf("read payload %s: %w", p.id, err)
	}
	defer p.o.inflight.Done()
	if off >= p.size {
		return 0, io.EOF
	}
	want := b
	if rest := p.size - off; int64(len(want)) > rest {
		want = want[:rest]
	}
	cs := int64(p.o.chunkSize)
	n := 0
	err := guard("read payload "+p.id.String(), func() error {
		return p.o.db.View(func(tx *bolt.Tx) error {
			// A quarantined op's chunks stay on disk: its record says
			// whether it may still be read.
			chunks := tx.Bucket(bucketChunks).Bucket(p.id[:])
			if chunks == nil || tx.Bucket(bucketOps).Get(p.id[:]) == nil {
				return fmt.Errorf("read payload %s: %w", p.id, ErrNotFound)
			}
			for n < len(want) {
				pos := off + int64(n)
				i := uint32(pos / cs)
				var c, sums []byte
				if cb := chunks.Bucket(chunkKey(i)); cb != nil {
					c, sums = cb.Get(keyData), cb.Get(keySums)
				}
				if c == nil {
					return fmt.Errorf("read payload %s: %w", p.id, ErrNotFound)
				}
				in := pos - int64(i)*cs
				if in >= int64(len(c)) {
					return fmt.Errorf("read payload %s: chunk %d is %d bytes, need offset %d: %w", p.id, i, len(c), in, ErrCorrupt)
				}
				end := min(int64(len(c)), in+int64(len(want)-n))
				// Copy first: the check then reads bytes the copy just
				// brought into the CPU's cache. Damage returns no bytes.
				k := copy(want[n:], c[in:end])
				if p.summed {
					if err := checkBlocks(p.id, i, int64(i)*cs, c, sums, int(in), int(end), p.o.sumBlock); err != nil {
						return err
					}
				}
				n += k
			}
			return nil
		})
	})
	if errors.Is(err, ErrDamaged) {
		p.o.quarantine(p.id, err)
		return 0, fmt.Errorf("read payload %s: %w", p.id, err)
	}
	if err != nil {
		return 0, err
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}
