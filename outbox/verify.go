package outbox

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"

	edgesync "github.com/edge-sync/edge-sync"
	bolt "go.etcd.io/bbolt"
)

// VerifyReport is what Verify or VerifyFile found.
type VerifyReport struct {
	// Ops and Bytes count the ops read and their payload bytes.
	Ops   int   `json:"ops"`
	Bytes int64 `json:"bytes"`
	// Unchecked counts ops stored by format version 1: read to the end,
	// but with no checksums or hash to check them against.
	Unchecked int `json:"unchecked"`
	// Damaged lists the ops this run found damaged; Verify has
	// quarantined them, VerifyFile changes nothing.
	Damaged []Damage `json:"damaged"`
	// Quarantined lists every op in quarantine after the run (this run's
	// and earlier ones).
	Quarantined []Damage `json:"quarantined"`
}

// OK reports whether nothing is damaged: no op found damaged and none in
// quarantine.
func (r *VerifyReport) OK() bool { return len(r.Damaged) == 0 && len(r.Quarantined) == 0 }

// checkOp reads op's payload chunk by chunk, each chunk in its own read
// transaction from view, checks every block checksum and at the end the
// payload's SHA-256 against the record. It returns the bytes read; an
// error wrapping ErrDamaged says what failed, ErrNotFound that a chunk
// is missing (the op was acked meanwhile, or bbolt lost it).
func checkOp(ctx context.Context, view func(func(*bolt.Tx) error) error, op *Op, l layout) (int64, error) {
	summed := op.Hash != [32]byte{}
	h := sha256.New()
	n := numChunks(op.Size, l.chunkSize)
	var read int64
	for i := uint32(0); i < n; i++ {
		if err := ctx.Err(); err != nil {
			return read, err
		}
		err := view(func(tx *bolt.Tx) error {
			var data, sums []byte
			if ob := tx.Bucket(bucketChunks).Bucket(op.ID[:]); ob != nil {
				if cb := ob.Bucket(chunkKey(i)); cb != nil {
					data, sums = cb.Get(keyData), cb.Get(keySums)
				}
			}
			if data == nil {
				return fmt.Errorf("chunk %d of %d is missing: %w", i, n, ErrNotFound)
			}
			if summed {
				off := int64(i) * int64(l.chunkSize)
				if err := checkBlocks(op.ID, i, off, data, sums, 0, len(data), l.sumBlock); err != nil {
					return err
				}
			}
			h.Write(data)
			read += int64(len(data))
			return nil
		})
		if err != nil {
			return read, err
		}
	}
	if read != op.Size {
		return read, fmt.Errorf("chunks hold %d bytes, the record says %d: %w", read, op.Size, ErrDamaged)
	}
	if summed {
		var sum [32]byte
		if h.Sum(sum[:0]); sum != op.Hash {
			return read, fmt.Errorf("payload hashes to %x…, its record says %x…: %w", sum[:4], op.Hash[:4], ErrDamaged)
		}
	}
	return read, nil
}

// Verify reads every stored op's payload, checks its block checksums and
// its SHA-256 against its record, and quarantines every op that fails
// (see Damage). Ops acked or dropped meanwhile are skipped. It reads one
// chunk per read transaction, so the outbox keeps working meanwhile.
func (o *Outbox) Verify(ctx context.Context) (VerifyReport, error) {
	var r VerifyReport
	if err := o.begin(); err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	defer o.inflight.Done()
	o.mu.Lock()
	ids := make([]edgesync.OpID, 0, len(o.idx.ops))
	for id := range o.idx.ops {
		ids = append(ids, id)
	}
	l := layout{version: formatVersion, chunkSize: o.chunkSize, sumBlock: o.sumBlock}
	o.mu.Unlock()
	slices.SortFunc(ids, edgesync.OpID.Compare)
	for _, id := range ids {
		op, n, err := o.verifyOne(ctx, id, l)
		if ctx.Err() != nil {
			return r, fmt.Errorf("verify: %w", ctx.Err())
		}
		switch {
		case errors.Is(err, ErrNotFound):
			// acked or dropped while we read it
		case err != nil:
			r.Damaged = append(r.Damaged, damageOf(&op, reasonOf(err)))
		default:
			r.Ops++
			r.Bytes += n
			if op.Hash == [32]byte{} {
				r.Unchecked++
			}
		}
	}
	var err error
	if r.Quarantined, err = o.quarantinedLocked(); err != nil {
		return r, fmt.Errorf("verify: %w", err)
	}
	return r, nil
}

// verifyOne checks op id as Verify does and quarantines it if it fails.
// It returns ErrNotFound if the op is gone (or goes while it is read),
// and otherwise the error that made it quarantine the op.
func (o *Outbox) verifyOne(ctx context.Context, id edgesync.OpID, l layout) (Op, int64, error) {
	op, ok := o.present(id)
	if !ok {
		return op, 0, fmt.Errorf("verify %s: %w", id, ErrNotFound)
	}
	view := func(fn func(*bolt.Tx) error) error {
		return guard("verify", func() error { return o.db.View(fn) })
	}
	n, err := checkOp(ctx, view, &op, l)
	if err == nil || ctx.Err() != nil {
		return op, n, err
	}
	if _, still := o.present(id); !still && !errors.Is(err, ErrDamaged) {
		return op, n, fmt.Errorf("verify %s: %w", id, ErrNotFound)
	}
	o.quarantine(id, err)
	return op, n, err
}

// VerifyOp checks one op as Verify does: if its payload fails its
// checksums or its SHA-256, it is quarantined and the error (wrapping
// ErrDamaged) says why. The sender calls it when the core says an op's
// bytes do not hash to what its header declared.
func (o *Outbox) VerifyOp(ctx context.Context, id edgesync.OpID) error {
	if err := o.begin(); err != nil {
		return fmt.Errorf("verify op: %w", err)
	}
	defer o.inflight.Done()
	o.mu.Lock()
	l := layout{version: formatVersion, chunkSize: o.chunkSize, sumBlock: o.sumBlock}
	o.mu.Unlock()
	if _, _, err := o.verifyOne(ctx, id, l); err != nil {
		return fmt.Errorf("verify op %s: %w", id, err)
	}
	return nil
}

// present returns op id's metadata if it is stored and not being removed.
func (o *Outbox) present(id edgesync.OpID) (Op, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := o.idx.ops[id]
	if e == nil || e.busy {
		return Op{}, false
	}
	return e.op, true
}

// quarantinedLocked lists the quarantine; the caller is in flight.
func (o *Outbox) quarantinedLocked() ([]Damage, error) {
	var out []Damage
	err := guard("list quarantine", func() error {
		return o.db.View(func(tx *bolt.Tx) error {
			var err error
			out, err = listQuarantine(tx)
			return err
		})
	})
	return out, err
}

// VerifyFile checks the outbox file at path as Verify does, while no
// agent has it open (it waits Options.LockTimeout for the lock, then
// fails with ErrLocked), and changes nothing: damaged ops are reported,
// not quarantined. Each op is read on its own, so damage to bbolt's pages
// under one op is reported as that op's damage and the others are still
// checked; damage that hides the rest of the list of ops ends the run
// with ErrCorrupt, after checking the ops listed before it.
func VerifyFile(path string, opts Options) (VerifyReport, error) {
	var r VerifyReport
	f, err := openFile(path, opts)
	if err != nil {
		return r, fmt.Errorf("verify %s: %w", path, err)
	}
	defer f.db.Close()
	r.Quarantined = f.quarantined
	for _, s := range f.ops {
		op, n, err := f.check(s)
		if err != nil {
			r.Damaged = append(r.Damaged, damageOf(&op, reasonOf(err)))
			continue
		}
		r.Ops++
		r.Bytes += n
		if op.Hash == [32]byte{} {
			r.Unchecked++
		}
	}
	if f.listErr != nil {
		return r, fmt.Errorf("verify %s: the list of ops is unreadable after %d ops: %w", path, len(f.ops), f.listErr)
	}
	return r, nil
}

// file is an outbox file opened read-only for VerifyFile and Salvage,
// with its list of ops read as far as bbolt could.
type file struct {
	db          *bolt.DB
	l           layout
	ops         []storedOp
	quarantined []Damage
	listErr     error // why the list of ops stops early; nil if it is whole
}

type storedOp struct {
	id  edgesync.OpID
	rec []byte
}

// openFile opens path read-only (a shared lock, so never while an agent
// has it) and lists its ops and its quarantine.
func openFile(path string, opts Options) (*file, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	f := &file{}
	err = guard("open "+path, func() error {
		var err error
		f.db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: opts.LockTimeout})
		return err
	})
	if err != nil {
		return nil, mapOpenErr(err)
	}
	err = f.view(func(tx *bolt.Tx) error {
		var err error
		if f.l, err = initOrCheck(tx, 0); err != nil {
			return err
		}
		if tx.Bucket(bucketMeta) == nil {
			return fmt.Errorf("no outbox in this file: %w", ErrForeign)
		}
		f.quarantined, err = listQuarantine(tx)
		return err
	})
	if err != nil {
		f.db.Close()
		return nil, err
	}
	// Ops appended before a damaged page stops the walk are kept.
	f.listErr = f.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOps).ForEach(func(k, v []byte) error {
			if len(k) != 16 {
				return fmt.Errorf("ops key %x is %d bytes: %w", k, len(k), ErrCorrupt)
			}
			f.ops = append(f.ops, storedOp{edgesync.OpID(k), slices.Clone(v)})
			return nil
		})
	})
	return f, nil
}

// view runs fn in a read transaction, a bbolt panic turned into ErrCorrupt.
func (f *file) view(fn func(*bolt.Tx) error) error {
	return guard("read", func() error { return f.db.View(fn) })
}

// check decodes s and reads and checks its payload; on error, op holds
// what its record says, read without trust.
func (f *file) check(s storedOp) (op Op, n int64, err error) {
	op, err = decodeOp(s.id, s.rec)
	if err == nil {
		err = f.view(func(tx *bolt.Tx) error { return checkChunks(tx.Bucket(bucketChunks), &op, f.l) })
	}
	if err == nil {
		n, err = checkOp(context.Background(), f.view, &op, f.l)
	}
	if err != nil {
		op, _ = untrustedOp(s.id, s.rec)
	}
	return op, n, err
}
