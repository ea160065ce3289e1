package outbox

import (
	"fmt"
	"io"

	edgesync "github.com/edge-sync/edge-sync"
	bolt "go.etcd.io/bbolt"
)

// Payload reads one op's payload. Each ReadAt runs its own short bbolt read
// transaction, so holding a Payload never pins the file; once the op is acked
// or dropped, ReadAt returns ErrNotFound.
type Payload struct {
	o    *Outbox
	id   edgesync.OpID
	size int64
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
	return &Payload{o: o, id: id, size: e.op.Size}, nil
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
			chunks := tx.Bucket(bucketChunks).Bucket(p.id[:])
			if chunks == nil {
				return fmt.Errorf("read payload %s: %w", p.id, ErrNotFound)
			}
			for n < len(want) {
				pos := off + int64(n)
				i := uint32(pos / cs)
				var c []byte
				if cb := chunks.Bucket(chunkKey(i)); cb != nil {
					c = cb.Get(keyData)
				}
				if c == nil {
					return fmt.Errorf("read payload %s: %w", p.id, ErrNotFound)
				}
				in := pos - int64(i)*cs
				if in >= int64(len(c)) {
					return fmt.Errorf("read payload %s: chunk %d is %d bytes, need offset %d: %w", p.id, i, len(c), in, ErrCorrupt)
				}
				n += copy(want[n:], c[in:])
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}
