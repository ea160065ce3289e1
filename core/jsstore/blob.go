package jsstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edge-sync/edge-sync/core"
)

// The data of an op over InlineMax is a "blob": messages of at most
// ChunkSize bytes on the data stream's subject P.data.<agent>.<blob>,
// each with its byte offset in the op (header Edge-Sync-Offset). A blob
// is appended to by WritePartial from any core, as the op arrives, and
// never changed once committed; the op's state entry or event names it
// (header Edge-Sync-Data) and, after the commit, a last message without
// data marks who owns it (Edge-Sync-Owner), for garbage collection.
//
// A write whose record update failed (a core died, or two cores raced on
// one partial) leaves chunks that the partial record does not count.
// Readers therefore assemble a blob by this rule: walking the subject's
// messages in order, a chunk is used when it covers the next byte wanted,
// from that byte on; others are skipped. Every chunk of one partial op
// holds the op's own bytes at its offset, so the result is the op's data;
// CommitPartial reads the blob by this rule and checks its SHA-256 before
// the op becomes visible, and core.Object checks it again at each full
// read.

// natsMsgSize is the header a headers-only consumer puts the size of the
// data left out in.
const natsMsgSize = "Nats-Msg-Size"

// writeChunks appends data at offset off to agent's blob. The chunks go
// out at once and are waited for together: one round trip per write, not
// per chunk.
func (s *Store) writeChunks(ctx context.Context, agent, blob string, off int64, data []byte) error {
	subject := s.n.dataSubject(agent, blob)
	var acks []jetstream.PubAckFuture
	for len(data) > 0 {
		n := min(len(data), s.cfg.ChunkSize)
		m := &nats.Msg{Subject: subject, Header: nats.Header{}, Data: data[:n]}
		m.Header.Set(HdrOffset, strconv.FormatInt(off, 10))
		f, err := s.js.PublishMsgAsync(m)
		if err != nil {
			return fmt.Errorf("write data at %d: %w", off, err)
		}
		acks = append(acks, f)
		off += int64(n)
		data = data[n:]
	}
	for _, f := range acks {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("write data: %w", s.full(subject, err))
		case <-ctx.Done():
			return fmt.Errorf("write data: %w", ctx.Err())
		}
	}
	return nil
}

// purgeBlob deletes a blob's messages.
func (s *Store) purgeBlob(ctx context.Context, subject string) error {
	if err := s.data.Purge(ctx, jetstream.WithPurgeSubject(subject)); err != nil {
		return fmt.Errorf("purge %s: %w", subject, err)
	}
	return nil
}

// markOwner appends the owner marker to a committed blob: "state" with
// the key, or "event" with the event's sequence number.
func (s *Store) markOwner(ctx context.Context, subject, owner, key string, seq uint64) error {
	m := &nats.Msg{Subject: subject, Header: nats.Header{}}
	m.Header.Set(HdrOwner, owner)
	m.Header.Set(HdrKey, url.PathEscape(key))
	if seq > 0 {
		m.Header.Set(HdrSeq, strconv.FormatUint(seq, 10))
	}
	if _, err := s.js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("mark %s owned by %s: %w", subject, owner, s.full(subject, err))
	}
	return nil
}

// chunkRef is one chunk a blob's data is read from: stream sequence seq
// holds the op's bytes from off; bytes [from, end) of the op are read
// from it.
type chunkRef struct {
	seq       uint64
	off       int64
	from, end int64
}

// blobIndex lists the chunks that make up the first size bytes of the
// blob on subject, by the rule above. A blob that ends short gives
// core.ErrNotFound (deleted, or not all there).
func (s *Store) blobIndex(ctx context.Context, subject string, size int64) ([]chunkRef, error) {
	var idx []chunkRef
	var pos int64
	if size == 0 {
		return nil, nil
	}
	err := s.scan(ctx, s.data, jetstream.ConsumerConfig{FilterSubject: subject, HeadersOnly: true}, func(m jetstream.Msg) error {
		h := m.Headers()
		o := h.Get(HdrOffset)
		if o == "" {
			return nil // the owner marker
		}
		off, err := strconv.ParseInt(o, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: chunk of %s with offset %q", core.ErrCorrupt, subject, o)
		}
		n, err := strconv.ParseInt(h.Get(natsMsgSize), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: chunk of %s without its size", core.ErrCorrupt, subject)
		}
		if off <= pos && pos < off+n {
			meta, err := m.Metadata()
			if err != nil {
				return err
			}
			end := min(off+n, size)
			idx = append(idx, chunkRef{seq: meta.Sequence.Stream, off: off, from: pos, end: end})
			pos = end
			if pos == size {
				return errStop
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if pos < size {
		return nil, fmt.Errorf("%w: data %s holds %d of %d bytes (replaced or deleted?)", core.ErrNotFound, subject, pos, size)
	}
	return idx, nil
}

// blobReader reads a blob's data at any offset (io.ReaderAt), one chunk
// message at a time, keeping the last one for sequential reads.
type blobReader struct {
	s       *Store
	subject string
	size    int64

	mu    sync.Mutex
	idx   []chunkRef
	built bool
	seq   uint64 // of the chunk in data
	data  []byte
}

func (s *Store) newBlobReader(subject string, size int64) *blobReader {
	return &blobReader{s: s, subject: subject, size: size}
}

// ReadAt fills p from offset off; core.ErrNotFound when the blob was
// deleted (its version replaced) meanwhile.
func (r *blobReader) ReadAt(p []byte, off int64) (int, error) {
	if err := r.s.acquire(); err != nil {
		return 0, err
	}
	defer r.s.release()
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx, cancel := r.s.ctx()
	defer cancel()
	if !r.built {
		idx, err := r.s.blobIndex(ctx, r.subject, r.size)
		if err != nil {
			return 0, err
		}
		r.idx, r.built = idx, true
	}
	n := 0
	for n < len(p) && off+int64(n) < r.size {
		pos := off + int64(n)
		i := sort.Search(len(r.idx), func(i int) bool { return r.idx[i].end > pos })
		if i == len(r.idx) {
			return n, io.EOF
		}
		c := r.idx[i]
		if r.seq != c.seq {
			m, err := r.s.data.GetMsg(ctx, c.seq)
			if err != nil {
				return n, fmt.Errorf("data of %s at %d: %w (replaced or deleted while reading)", r.subject, pos, notFound(err))
			}
			r.seq, r.data = c.seq, m.Data
		}
		if int64(len(r.data)) < c.end-c.off {
			return n, fmt.Errorf("%w: chunk %d of %s is %d bytes, want %d", core.ErrCorrupt, c.seq, r.subject, len(r.data), c.end-c.off)
		}
		n += copy(p[n:], r.data[pos-c.off:c.end-c.off])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// readBlob reads a whole blob into memory (ops up to InlineMax), for an
// operation that holds the store open.
func (s *Store) readBlob(subject string, size int64) ([]byte, error) {
	var b bytes.Buffer
	if err := s.streamBlob(subject, size, func(p []byte) { b.Write(p) }); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// hashBlob returns the SHA-256 of a blob's first size bytes, read by the
// rule readers use, for an operation that holds the store open.
func (s *Store) hashBlob(subject string, size int64) ([32]byte, error) {
	h := sha256.New()
	if err := s.streamBlob(subject, size, func(p []byte) { h.Write(p) }); err != nil {
		return [32]byte{}, err
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}

// blobBatch is how many chunks one pull of streamBlob asks for.
const blobBatch = 8

// streamBlob hands fn a blob's first size bytes in order, by the rule
// above, streaming its chunks from one consumer: the whole blob in a
// round trip per blobBatch chunks. A blob that ends short gives
// core.ErrNotFound.
func (s *Store) streamBlob(subject string, size int64, fn func([]byte)) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeout+time.Duration(size>>20)*time.Second)
	defer cancel()
	var pos int64
	if size == 0 {
		return nil
	}
	err := s.scanBatch(ctx, s.data, jetstream.ConsumerConfig{FilterSubject: subject}, blobBatch, func(m jetstream.Msg) error {
		o := m.Headers().Get(HdrOffset)
		if o == "" {
			return nil // the owner marker
		}
		off, err := strconv.ParseInt(o, 10, 64)
		if err != nil {
			return fmt.Errorf("%w: chunk of %s with offset %q", core.ErrCorrupt, subject, o)
		}
		data := m.Data()
		if off <= pos && pos < off+int64(len(data)) {
			end := min(off+int64(len(data)), size)
			fn(data[pos-off : end-off])
			pos = end
			if pos == size {
				return errStop
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if pos < size {
		return fmt.Errorf("%w: data %s holds %d of %d bytes (replaced or deleted?)", core.ErrNotFound, subject, pos, size)
	}
	return nil
}
