package outbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"path/filepath"
	"sync"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/groupcommit"
	"github.com/edge-sync/edge-sync/internal/lifecycle"
	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Outbox is a durable, bounded priority queue of ops in one bbolt file. It
// is safe for concurrent use.
type Outbox struct {
	db        *bolt.DB
	opts      Options
	log       hclog.Logger
	gen       *edgesync.IDGenerator
	commit    *groupcommit.Group[*bolt.Tx] // group commit: concurrent writers share a transaction
	chunkSize int
	sumBlock  int    // payload bytes per checksum
	dir       string // the file's directory, for free-space checks
	pageSize  int    // bbolt's; read once at Open (DB.Info races with writers)

	inflight sync.WaitGroup // methods running; Close waits for them

	mu     sync.Mutex // guards everything below
	closed bool
	idx    *index
	drops  chan Drop
	counts [NumReasons]uint64
	lost   uint64 // drops not delivered because the channel was full
	quar   Count  // ops in quarantine and their payload bytes
}

// Open opens or creates the outbox file at path. A damaged or truncated
// file gives ErrCorrupt, a bbolt file of something else ErrForeign, and a
// file of a newer format ErrVersion; Open never modifies such a file.
func Open(path string, opts Options) (*Outbox, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	if err := checkHeader(path); err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	var db *bolt.DB
	err = guard("open outbox "+path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{
			Timeout:      opts.LockTimeout,
			FreelistType: bolt.FreelistMapType,
			MaxSize:      opts.MaxFileSize,
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", path, mapOpenErr(err))
	}
	o := &Outbox{
		db:    db,
		opts:  opts,
		log:   opts.Logger,
		gen:   edgesync.NewIDGenerator(),
		idx:   newIndex(),
		drops: make(chan Drop, opts.DropBuffer),
		dir:   filepath.Dir(path),
	}
	// The runner turns a panic of bbolt's (a damaged page) into ErrCorrupt:
	// one that escaped would leave the group's queued callers waiting for
	// ever (internal/groupcommit's caveat).
	o.commit = groupcommit.New(func(fn func(*bolt.Tx) error) error {
		return guard("commit", func() error { return db.Update(fn) })
	}, 0, 0)
	o.pageSize = db.Info().PageSize
	if err := o.load(path); err != nil {
		if cerr := db.Close(); cerr != nil {
			o.log.Warn("close after a failed open", "path", path, "error", cerr)
		}
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	return o, nil
}

// load checks the format and every op record, builds the index, and then
// (in one write transaction, only if there is something to write) creates
// a new file's buckets, upgrades a version 1 file, sweeps crashed Enqueues
// and quarantines the ops whose records or checksums are damaged. A file
// that fails a check of its structure is not written to.
func (o *Outbox) load(path string) error {
	var l layout
	var fresh bool
	var pending int
	var damaged []Damage
	err := guard("load", func() error {
		return o.db.View(func(tx *bolt.Tx) error {
			fresh = tx.Bucket(bucketMeta) == nil
			var err error
			if l, err = initOrCheck(tx, o.opts.chunkSize); err != nil || fresh {
				return err
			}
			pending = tx.Bucket(bucketPending).Stats().KeyN
			if o.quar, err = countQuarantine(tx); err != nil {
				return err
			}
			chunks := tx.Bucket(bucketChunks)
			return tx.Bucket(bucketOps).ForEach(func(k, v []byte) error {
				if len(k) != 16 {
					return fmt.Errorf("ops key %x is %d bytes: %w", k, len(k), ErrCorrupt)
				}
				id := edgesync.OpID(k)
				op, err := decodeOp(id, v)
				if err == nil {
					err = checkChunks(chunks, &op, l)
				}
				if errors.Is(err, ErrDamaged) {
					op, _ := untrustedOp(id, v)
					damaged = append(damaged, damageOf(&op, reasonOf(err)))
					o.gen.Observe(id)
					return nil
				}
				if err != nil {
					return err
				}
				o.gen.Observe(id)
				o.idx.add(op)
				o.idx.usedOps++
				o.idx.usedBytes += op.Size
				return nil
			})
		})
	})
	if err != nil {
		return err
	}
	o.chunkSize, o.sumBlock = l.chunkSize, l.sumBlock
	if fresh || pending > 0 || l.version < formatVersion || len(damaged) > 0 {
		now := o.opts.Now()
		err = guard("sweep", func() error {
			return o.db.Update(func(tx *bolt.Tx) error {
				var err error
				switch {
				case fresh:
					l, err = initOrCheck(tx, o.chunkSize)
				case l.version < formatVersion:
					l, err = upgrade(tx)
				}
				if err != nil {
					return err
				}
				if pending, err = o.sweep(tx); err != nil {
					return err
				}
				for _, d := range damaged {
					if err := moveToQuarantine(tx, d.ID, now, d.Reason); err != nil {
						return err
					}
				}
				return nil
			})
		})
		if err != nil {
			return mapWriteErr(err)
		}
		if l.version > 0 {
			o.chunkSize, o.sumBlock = l.chunkSize, l.sumBlock
		}
	}
	for _, d := range damaged {
		o.quar.add(d.Size)
		o.log.Error("op quarantined at open: its stored record is damaged and it will not be sent; run `edge-sync ctl transport.outbox.verify`",
			"op", d.ID.String(), "endpoint", d.Endpoint, "key", d.Key, "reason", d.Reason)
	}
	o.log.Info("opened", "path", path, "ops", o.idx.usedOps, "bytes", o.idx.usedBytes, "orphans_swept", pending,
		"quarantined", o.quar.Ops)
	return nil
}

// countQuarantine counts the ops in quarantine and their payload bytes.
func countQuarantine(tx *bolt.Tx) (Count, error) {
	list, err := listQuarantine(tx)
	var c Count
	for _, d := range list {
		c.add(d.Size)
	}
	return c, err
}

// checkChunks verifies that op's chunks exist and add up to its size, and
// that an op with a payload hash (record version 2) has every chunk's
// block checksums. A missing chunk is ErrCorrupt (bbolt's structure does
// not hold together); missing or mis-sized checksums are ErrDamaged.
func checkChunks(chunks *bolt.Bucket, op *Op, l layout) error {
	chunkSize := l.chunkSize
	n := numChunks(op.Size, chunkSize)
	b := chunks.Bucket(op.ID[:])
	if b == nil {
		if n == 0 {
			return nil
		}
		return fmt.Errorf("op %s: chunk bucket is missing: %w", op.ID, ErrCorrupt)
	}
	summed := op.Hash != [32]byte{}
	if summed && l.sumBlock == 0 {
		return fmt.Errorf("op %s: a version 2 record in a version 1 file: %w", op.ID, ErrCorrupt)
	}
	var total int64
	c := b.Cursor()
	k, _ := c.First()
	for i := uint32(0); i < n; i++ {
		var v, sums []byte
		if cb := b.Bucket(k); cb != nil {
			v, sums = cb.Get(keyData), cb.Get(keySums)
		}
		if !bytes.Equal(k, chunkKey(i)) || v == nil {
			return fmt.Errorf("op %s: chunk %d of %d is missing: %w", op.ID, i, n, ErrCorrupt)
		}
		if i < n-1 && len(v) != chunkSize {
			return fmt.Errorf("op %s: chunk %d is %d bytes, want %d: %w", op.ID, i, len(v), chunkSize, ErrCorrupt)
		}
		if summed && len(sums) != 4*numBlocks(len(v), l.sumBlock) {
			return fmt.Errorf("op %s: chunk %d has %d bytes of checksums for %d bytes: %w", op.ID, i, len(sums), len(v), ErrDamaged)
		}
		total += int64(len(v))
		k, _ = c.Next()
	}
	if k != nil || total != op.Size {
		return fmt.Errorf("op %s: chunks hold %d bytes (extra key %x), record says %d: %w", op.ID, total, k, op.Size, ErrCorrupt)
	}
	return nil
}

// sweep deletes the chunks of Enqueues that crashed before publishing.
func (o *Outbox) sweep(tx *bolt.Tx) (int, error) {
	pending := tx.Bucket(bucketPending)
	var ids []edgesync.OpID
	err := pending.ForEach(func(k, _ []byte) error {
		if len(k) != 16 {
			return fmt.Errorf("pending key %x is %d bytes: %w", k, len(k), ErrCorrupt)
		}
		ids = append(ids, edgesync.OpID(k))
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		o.gen.Observe(id)
		if tx.Bucket(bucketOps).Get(id[:]) == nil {
			if err := deleteChunks(tx, id); err != nil {
				return 0, err
			}
		}
		if err := pending.Delete(id[:]); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// deleteChunks deletes every chunk of id.
func deleteChunks(tx *bolt.Tx, id edgesync.OpID) error {
	err := tx.Bucket(bucketChunks).DeleteBucket(id[:])
	if errors.Is(err, berrors.ErrBucketNotFound) {
		return nil
	}
	return err
}

// deleteOp deletes op id's record and chunks; deleting a missing op is a no-op.
func deleteOp(tx *bolt.Tx, id edgesync.OpID) error {
	if err := tx.Bucket(bucketOps).Delete(id[:]); err != nil {
		return err
	}
	return deleteChunks(tx, id)
}

// begin registers a running method; it fails once Close has started.
func (o *Outbox) begin() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return ErrClosed
	}
	o.inflight.Add(1)
	return nil
}

// Close waits for running methods (cancel their contexts to hurry them),
// closes the Drops channel and the file. Later calls return ErrClosed.
func (o *Outbox) Close() error {
	if !lifecycle.MarkClosed(&o.mu, &o.closed) {
		return ErrClosed
	}
	o.inflight.Wait()
	close(o.drops)
	if err := o.db.Close(); err != nil {
		return fmt.Errorf("close outbox: %w", err)
	}
	return nil
}

// Drops returns the channel on which every drop (capacity, expired,
// superseded) is reported; it is closed by Close. The outbox never waits on
// it: drops that find its buffer (Options.DropBuffer) full are only counted,
// in Stats.DropsUnreported. Every call returns the same channel.
func (o *Outbox) Drops() <-chan Drop { return o.drops }

// emitLocked reports drops; o.mu is held and the outbox is not closed yet
// (the caller is in flight).
func (o *Outbox) emitLocked(d Drop) {
	o.counts[d.Reason]++
	o.log.Debug("dropped op", "id", d.ID, "endpoint", d.Endpoint, "key", d.Key, "priority", d.Priority, "reason", d.Reason)
	select {
	case o.drops <- d:
	default:
		o.lost++
	}
}

// Enqueue stores a new op and returns its metadata once it is durable
// (fsynced). The payload is streamed to disk in chunks. When the outbox is
// full it evicts the oldest ops of the lowest priority present if, and only
// if, that priority is strictly lower than the new op's; otherwise it returns
// ErrFull. A State op supersedes older unleased State ops of the same
// endpoint and key.
func (o *Outbox) Enqueue(ctx context.Context, n NewOp) (Op, error) {
	if err := n.validate(); err != nil {
		return Op{}, fmt.Errorf("enqueue: %w", err)
	}
	if err := o.begin(); err != nil {
		return Op{}, fmt.Errorf("enqueue: %w", err)
	}
	defer o.inflight.Done()
	op := o.newOp(n)
	if n.ID != (edgesync.OpID{}) {
		o.mu.Lock()
		_, used := o.idx.ops[n.ID]
		o.mu.Unlock()
		if used {
			return Op{}, fmt.Errorf("enqueue: id %s is stored already (take a fresh one from NewID for each op): %w", n.ID, ErrInvalid)
		}
	}
	if err := o.store(ctx, &op, n.Payload, [32]byte{}); err != nil {
		return Op{}, fmt.Errorf("enqueue: %w", err)
	}
	return op, nil
}

// NewID returns a fresh op ID for NewOp.ID, for a caller that must know
// the op's ID while Enqueue writes it.
func (o *Outbox) NewID() edgesync.OpID { return o.gen.Next() }

// newOp is the record of a new op: a fresh ID, the time, and its expiry
// from its TTL or the default of its priority.
func (o *Outbox) newOp(n NewOp) Op {
	now := o.opts.Now()
	id := n.ID
	if id == (edgesync.OpID{}) {
		id = o.gen.Next()
	}
	op := Op{
		ID: id, Endpoint: n.Endpoint, Key: n.Key, Priority: n.Priority,
		Kind: n.Kind, EnqueuedAt: now,
	}
	if op.Kind == 0 {
		op.Kind = edgesync.EventOp
	}
	if len(n.Summary) > 0 {
		op.Summary = append([]byte(nil), n.Summary...)
	}
	ttl := n.TTL
	if ttl == 0 {
		ttl = o.opts.DefaultTTL[n.Priority]
	}
	if ttl > 0 {
		op.ExpiresAt = now.Add(ttl)
	}
	return op
}

// store streams payload into op's chunks and publishes op, with op.Hash
// set to the payload's SHA-256; if want is not zero, a payload that does
// not hash to it is refused with ErrDamaged. When it fails, the chunks
// already committed are deleted before it returns (or, if that fails too,
// swept by the next Open): the deferred discard runs on every error path.
func (o *Outbox) store(ctx context.Context, op *Op, payload io.Reader, want [32]byte) (err error) {
	s := stager{o: o, id: op.ID, sha: sha256.New()}
	defer func() {
		if err != nil {
			s.discard()
		}
	}()
	first, tail, err := s.stream(ctx, payload, &op.Size)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.sha.Sum(op.Hash[:0])
	if want != [32]byte{} && op.Hash != want {
		return fmt.Errorf("payload hashes to %x…, its record says %x…: %w", op.Hash[:4], want[:4], ErrDamaged)
	}
	var size int64
	for _, c := range tail {
		size += int64(len(c.data))
	}
	if err := o.checkSpace(size); err != nil {
		return err
	}
	return o.publish(op, first, tail, s.staged)
}

// chunk is one chunk of a payload on its way to disk, with its block
// checksums.
type chunk struct{ data, sums []byte }

// stager cuts one op's payload into chunks and commits them a stage
// (Options.stageChunks chunks) at a time under a pending marker, so that a
// payload larger than memory never sits in one transaction. The last stage
// is left to publish, to go in the same transaction as the op's record.
type stager struct {
	o   *Outbox
	id  edgesync.OpID
	sha hash.Hash // of every byte read from the producer, in order
	// staged: chunks may be on disk under the pending marker (a failed
	// commit may still have reached it), so discard must delete them.
	staged bool
}

// stream reads payload to its end, adding its length to *size, feeding
// the stager's SHA-256 and checksumming each chunk as it is read, before
// anything is written. It commits every full stage and returns the chunks
// of the last one with the index of its first chunk.
func (s *stager) stream(ctx context.Context, payload io.Reader, size *int64) (first uint32, tail []chunk, err error) {
	o := s.o
	limit := min(o.opts.MaxOpBytes, o.opts.MaxBytes)
	if payload == nil {
		payload = bytes.NewReader(nil)
	}
	hint := o.chunkSize
	if l, ok := payload.(interface{ Len() int }); ok {
		hint = min(l.Len()+1, o.chunkSize)
	}
	var stage []chunk
	var next uint32
	for {
		if len(stage) == o.opts.stageChunks {
			if err := s.commit(ctx, next-uint32(len(stage)), stage); err != nil {
				return 0, nil, err
			}
			stage = nil
		}
		buf, err := readChunk(payload, o.chunkSize, hint)
		if len(buf) == o.chunkSize {
			hint = o.chunkSize // a big payload: skip the buffer doubling from now on
		}
		if len(buf) > 0 {
			*size += int64(len(buf))
			if *size > limit {
				return 0, nil, fmt.Errorf("payload over %d bytes: %w", limit, ErrTooLarge)
			}
			s.sha.Write(buf)
			stage = append(stage, chunk{data: buf, sums: blockSums(s.id, next, buf, o.sumBlock)})
			next++
		}
		if err == io.EOF {
			return next - uint32(len(stage)), stage, nil
		}
		if err != nil {
			return 0, nil, fmt.Errorf("read payload: %w", err)
		}
	}
}

// commit writes one full stage, chunks [first, first+len(stage)).
func (s *stager) commit(ctx context.Context, first uint32, stage []chunk) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.staged = true
	err := s.o.checkSpace(int64(len(stage) * s.o.chunkSize))
	if err == nil {
		err = s.o.writeStage(s.id, first, stage)
	}
	if err != nil {
		return fmt.Errorf("write payload: %w", err)
	}
	return nil
}

// discard deletes what the stager committed; a failure is logged, and the
// pending marker makes the next Open sweep the chunks instead.
func (s *stager) discard() {
	if !s.staged {
		return
	}
	id := s.id
	err := s.o.commit.Do(func(tx *bolt.Tx) error {
		if err := deleteChunks(tx, id); err != nil {
			return err
		}
		return tx.Bucket(bucketPending).Delete(id[:])
	})
	if err != nil {
		s.o.log.Warn("cleanup of failed enqueue; Open will sweep it", "id", id, "error", err)
	}
}

// readChunk reads up to max bytes, growing its buffer from hint; it returns
// io.EOF with the last bytes once the reader is exhausted.
func readChunk(r io.Reader, limit, hint int) ([]byte, error) {
	buf := make([]byte, 0, min(max(hint, 512), limit))
	empty := 0
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= limit {
				return buf, nil
			}
			buf = growTo(buf, min(2*cap(buf), limit))
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
		// Like bufio: a reader that keeps returning nothing is broken.
		if empty++; n > 0 {
			empty = 0
		} else if empty >= 100 {
			return buf, io.ErrNoProgress
		}
	}
}

func growTo(b []byte, c int) []byte {
	nb := make([]byte, len(b), c)
	copy(nb, b)
	return nb
}

// writeStage commits chunks [first, first+len(stage)) under a pending marker.
func (o *Outbox) writeStage(id edgesync.OpID, first uint32, stage []chunk) error {
	return mapWriteErr(o.commit.Do(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketPending).Put(id[:], nil); err != nil {
			return err
		}
		return putChunks(tx, id, first, stage)
	}))
}

func putChunks(tx *bolt.Tx, id edgesync.OpID, first uint32, stage []chunk) error {
	if len(stage) == 0 {
		return nil
	}
	b, err := tx.Bucket(bucketChunks).CreateBucketIfNotExists(id[:])
	if err != nil {
		return err
	}
	for i, c := range stage {
		cb, err := b.CreateBucketIfNotExists(chunkKey(first + uint32(i)))
		if err != nil {
			return err
		}
		if err := cb.Put(keyData, c.data); err != nil {
			return err
		}
		if err := cb.Put(keySums, c.sums); err != nil {
			return err
		}
	}
	return nil
}

// publish makes op visible: in one transaction it writes the last chunks and
// the op record, clears the pending marker and deletes the ops it drops.
func (o *Outbox) publish(op *Op, first uint32, stage []chunk, staged bool) error {
	o.mu.Lock()
	victims, reasons, err := o.idx.plan(op, o.opts.MaxOps, o.opts.MaxBytes)
	ids := make([]edgesync.OpID, len(victims))
	for i, v := range victims {
		ids[i] = v.op.ID
	}
	o.mu.Unlock()
	if err != nil {
		return err
	}
	rec := encodeOp(op)
	err = o.commit.Do(func(tx *bolt.Tx) error {
		if err := putChunks(tx, op.ID, first, stage); err != nil {
			return err
		}
		if err := tx.Bucket(bucketOps).Put(op.ID[:], rec); err != nil {
			return err
		}
		if staged {
			if err := tx.Bucket(bucketPending).Delete(op.ID[:]); err != nil {
				return err
			}
		}
		for _, id := range ids {
			if err := deleteOp(tx, id); err != nil {
				return err
			}
		}
		return nil
	})
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.idx.undo(victims)
		o.idx.usedOps--
		o.idx.usedBytes -= op.Size
		return mapWriteErr(err)
	}
	o.idx.add(*op)
	for i, v := range victims {
		d := dropOf(&v.op, reasons[i])
		o.idx.remove(v.op.ID)
		o.emitLocked(d)
	}
	return nil
}
