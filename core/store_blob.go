package core

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Object data lives in the agent's blobs bucket as chunks keyed by blob ID
// and offset. A blob is written once (sequentially, possibly over many
// transactions while it is a partial op) and then published by a small
// metadata transaction that points a version or event at it, so no
// transaction ever holds a whole large object.

// writeChunks stores data at offset off of blob, split into chunks of at
// most chunkSize.
func writeChunks(a *agentBucket, blob uint64, off int64, data []byte, chunkSize int) error {
	if off > 0 && len(data) > 0 {
		// Top up a short last chunk first, so that many small writes do not
		// leave many small chunks behind (reads and deletes walk chunks).
		c := a.blobs.Cursor()
		c.Seek(blobKey(blob, off))
		k, v := c.Prev()
		if k != nil && beU64(k[:8]) == blob && int64(beU64(k[8:]))+int64(len(v)) == off && len(v) < chunkSize {
			fill := min(chunkSize-len(v), len(data))
			merged := make([]byte, 0, len(v)+fill)
			merged = append(append(merged, v...), data[:fill]...)
			if err := a.blobs.Put(bytes.Clone(k), merged); err != nil {
				return err
			}
			off += int64(fill)
			data = data[fill:]
		}
	}
	for len(data) > 0 {
		n := min(len(data), chunkSize)
		// bbolt keeps a reference to the value until commit; every caller
		// commits before returning to its own caller, so no copy is needed.
		if err := a.blobs.Put(blobKey(blob, off), data[:n]); err != nil {
			return err
		}
		off += int64(n)
		data = data[n:]
	}
	return nil
}

// deleteChunks deletes up to max chunks of blob and reports whether the
// blob is now empty.
func deleteChunks(a *agentBucket, blob uint64, max int) (done bool, err error) {
	prefix := blobKey(blob, 0)[:8]
	var keys [][]byte
	c := a.blobs.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(keys) == max {
			break
		}
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := a.blobs.Delete(k); err != nil {
			return false, err
		}
	}
	return len(keys) < max, nil
}

// freeBlob drops a blob that nothing references any more: small ones at
// once, big ones via the garbage bucket so that this transaction stays
// small; collectGarbage finishes them.
func (s *Store) freeBlob(a *agentBucket, blob uint64, size int64) error {
	if blob == 0 {
		return nil // no blob: the record held the data (blob IDs start at 1)
	}
	if size <= s.cfg.InlineMax {
		done, err := deleteChunks(a, blob, int(size/int64(s.cfg.ChunkSize))+2)
		if err != nil || done {
			return err
		}
	}
	a.queued = true
	return a.garbage.Put(u64b(blob), u64b(uint64(size)))
}

// garbageChunksPerTx bounds the chunks one garbage transaction deletes.
const garbageChunksPerTx = 512

// collectGarbage deletes the blobs queued in agent's garbage bucket, a
// bounded number of chunks per transaction.
func (s *Store) collectGarbage(agent string) error {
	pending := false
	if err := s.viewTx(func(tx *bolt.Tx) error {
		a, err := agentRO(tx, agent)
		if err == nil {
			k, _ := a.garbage.Cursor().First()
			pending = k != nil
		}
		return err
	}); err != nil || !pending {
		if err != nil {
			return fmt.Errorf("collect garbage: %w", err)
		}
		return nil // the common case: no write transaction, no fsync
	}
	// Each round deletes garbageChunksPerTx chunks or finishes a blob; the
	// bound only guards against a bug looping forever.
	for round := 0; round < 1<<20; round++ {
		more := false
		err := s.update(func(tx *bolt.Tx) error {
			more = false
			a, err := agentRO(tx, agent)
			if err != nil {
				return err
			}
			k, _ := a.garbage.Cursor().First()
			if k == nil {
				return nil
			}
			more = true
			done, err := deleteChunks(a, beU64(k), garbageChunksPerTx)
			if err != nil {
				return err
			}
			if done {
				return a.garbage.Delete(bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("collect garbage: %w", err)
		}
		if !more {
			return nil
		}
	}
	return fmt.Errorf("collect garbage for %q: did not finish", agent)
}

// Object reads a stored object's data. Each ReadAt runs in its own short
// read transaction, so an Object can be read slowly without holding bbolt
// pages (or the object) in memory. If the object is replaced and its data
// deleted while it is being read, reads fail with ErrNotFound. A small
// op's data, held in its record (format 2, inlineDataMax), is held by the
// Object instead: it reads as it was, even after a replace or Close.
//
// bbolt has no checksums on data pages, so an Object checks what it
// serves against the SHA-256 recorded when the op was committed: reads
// that run in order from offset 0 (Read, or ReadAt as io.SectionReader
// and io.Copy issue them) feed a hash, and the read that reaches the end
// returns ErrCorrupt, and none of its bytes, if the data does not match.
// A damaged object is thus never read to its end as good; bytes returned
// by earlier reads are only known good once the last read succeeds.
// Reads out of order (a delta base's regions) are not checked here: what
// is built from them is checked against its own hash at commit.
type Object struct {
	s     *Store
	agent string
	blob  uint64
	size  int64
	want  [32]byte // SHA-256 recorded at commit

	mu      sync.Mutex // guards h, hashed and damaged (ReadAt may be called concurrently)
	h       hash.Hash
	hashed  int64 // bytes fed to h: a read at exactly this offset extends it
	damaged error // set once the data failed its hash: every read returns it

	off int64 // for Read and Seek

	src io.ReaderAt // the data of another Backend (NewObject); nil for Store's
}

// newObject reads the data of blob, or inline, the data of a record that
// holds it.
func newObject(s *Store, agent string, blob uint64, inline []byte, size int64, sum [32]byte) *Object {
	o := &Object{s: s, agent: agent, blob: blob, size: size, want: sum, h: sha256.New()}
	if inline != nil {
		o.src = bytes.NewReader(inline)
	}
	return o
}

// Size returns the object's size in bytes.
func (o *Object) Size() int64 { return o.size }

// ReadAt implements io.ReaderAt.
func (o *Object) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read object: negative offset %d: %w", off, ErrInvalid)
	}
	if off >= o.size {
		if o.size == 0 {
			if err := o.verify(nil, 0); err != nil {
				return 0, err
			}
		}
		return 0, io.EOF
	}
	want := p
	if rem := o.size - off; int64(len(want)) > rem {
		want = want[:rem]
	}
	o.mu.Lock()
	damaged := o.damaged
	o.mu.Unlock()
	if damaged != nil {
		return 0, damaged
	}
	if o.src != nil {
		n, err := o.readSrc(p, want, off)
		if err == nil || errors.Is(err, io.EOF) {
			if verr := o.verify(want[:n], off); verr != nil {
				return 0, verr
			}
		}
		return n, err
	}
	if err := o.s.acquire(); err != nil {
		return 0, fmt.Errorf("read object: %w", err)
	}
	defer o.s.release()
	n := 0
	err := o.s.viewTx(func(tx *bolt.Tx) error {
		a, err := agentRO(tx, o.agent)
		if err != nil {
			return err
		}
		c := a.blobs.Cursor()
		prefix := blobKey(o.blob, 0)[:8]
		k, v := c.Seek(blobKey(o.blob, off))
		if k == nil || !bytes.Equal(k, blobKey(o.blob, off)) {
			// The chunk holding off starts before it.
			k, v = c.Prev()
		}
		for n < len(want) {
			if k == nil || !bytes.HasPrefix(k, prefix) {
				return fmt.Errorf("object data at offset %d: %w (replaced or deleted while reading)", off+int64(n), ErrNotFound)
			}
			start := int64(beU64(k[8:]))
			pos := off + int64(n)
			if pos < start || pos >= start+int64(len(v)) {
				return fmt.Errorf("%w: object chunk at %d does not cover offset %d", ErrCorrupt, start, pos)
			}
			n += copy(want[n:], v[pos-start:])
			k, v = c.Next()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("read object: %w", err)
	}
	if err := o.verify(want[:n], off); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// verify feeds b, read at off, to the object's hash if it continues the
// bytes hashed so far, and once the hash covers the whole object checks
// it against the one recorded at commit.
func (o *Object) verify(b []byte, off int64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if off != o.hashed {
		return nil
	}
	o.h.Write(b)
	o.hashed += int64(len(b))
	if o.hashed != o.size {
		return nil
	}
	var sum [32]byte
	if o.h.Sum(sum[:0]); sum != o.want {
		o.damaged = fmt.Errorf("read object: %w: data hashes to %x, stored as %x", ErrCorrupt, sum[:8], o.want[:8])
		return o.damaged
	}
	return nil
}

// Read implements io.Reader, reading from the current offset.
func (o *Object) Read(p []byte) (int, error) {
	n, err := o.ReadAt(p, o.off)
	o.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

// Seek implements io.Seeker.
func (o *Object) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += o.off
	case io.SeekEnd:
		offset += o.size
	default:
		return 0, fmt.Errorf("seek object: whence %d: %w", whence, ErrInvalid)
	}
	if offset < 0 {
		return 0, fmt.Errorf("seek object: offset %d: %w", offset, ErrInvalid)
	}
	o.off = offset
	return offset, nil
}
