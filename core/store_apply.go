package core

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
)

// BeginPartial starts receiving an op, or resumes it: it returns how many
// bytes are already held (0 for a new op). If the op was applied before,
// dup is true and nothing is started; acknowledge it again. A header that
// differs from the held partial's restarts the op from zero. The op's
// declared size counts against the agent's quota from now on (ErrQuota),
// until it is committed or discarded, or its receive ends
// (ReleasePartial).
func (s *Store) BeginPartial(agent string, hdr PartialHeader) (held int64, dup bool, err error) {
	return s.beginPartial(agent, hdr, false)
}

func (s *Store) beginPartial(agent string, hdr PartialHeader, ephemeral bool) (held int64, dup bool, err error) {
	if err := checkAgent(agent); err != nil {
		return 0, false, fmt.Errorf("begin partial: %w", err)
	}
	if err := s.checkHeader(hdr); err != nil {
		return 0, false, fmt.Errorf("begin partial: %w", err)
	}
	if err := s.acquire(); err != nil {
		return 0, false, fmt.Errorf("begin partial: %w", err)
	}
	defer s.release()
	now := s.cfg.Now()
	restarted := false
	err = s.update(func(tx *bolt.Tx) error {
		held, dup, restarted = 0, false, false
		a, err := s.agentW(tx, agent)
		if err != nil {
			return err
		}
		defer func() { restarted = restarted || a.queued }() // collect what a fold queued too
		if a.applied.Get(hdr.OpID[:]) != nil {
			dup = true
			return a.addStat(statDedups, 1)
		}
		if v := a.partials.Get(hdr.OpID[:]); v != nil {
			p, err := decodePartial(v)
			if err != nil {
				return fmt.Errorf("partial %s: %w", hdr.OpID, err)
			}
			if p.hdr == hdr {
				held = p.held
				return s.reserve(a, &p)
			}
			if err := s.dropPartial(a, p); err != nil {
				return err
			}
			restarted = true
		}
		if err := s.checkQuota(a, hdr, 0); err != nil {
			return err
		}
		blob, err := a.blobs.NextSequence()
		if err != nil {
			return err
		}
		st, err := sha256.New().(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			return err
		}
		p := partialRec{hdr: hdr, blob: blob, created: now, updated: now, ephemeral: ephemeral, hashState: st, reserved: hdr.Size}
		if err := a.partials.Put(hdr.OpID[:], p.encode()); err != nil {
			return err
		}
		return a.addStat(statReserved, hdr.Size)
	})
	if err != nil {
		return 0, false, fmt.Errorf("begin partial %s: %w", hdr.OpID, err)
	}
	if restarted {
		if err := s.collectGarbage(agent); err != nil {
			return 0, false, err
		}
	}
	return held, dup, nil
}

// reserve makes a partial op that is received again count its whole
// declared size against the quota, as when it began: the part its
// release gave back is checked against the quota again.
func (s *Store) reserve(a *agentBucket, p *partialRec) error {
	if p.reserved >= p.hdr.Size {
		return nil
	}
	if err := s.checkQuota(a, p.hdr, p.reserved); err != nil {
		return err
	}
	if err := a.addStat(statReserved, p.hdr.Size-p.reserved); err != nil {
		return err
	}
	p.reserved = p.hdr.Size
	return a.partials.Put(p.hdr.OpID[:], p.encode())
}

// ReleasePartial ends the reservation of a partial op whose receive has
// ended (its connection closed, or it sat idle past the server's frame
// timeout) without a commit: from now on it counts only the bytes it
// holds against the agent's quota, not the declared bytes that never
// came. The partial and its bytes stay for a resume; BeginPartial
// reserves its declared size again. A partial that is not there (it was
// committed or discarded) gives ErrNotFound.
func (s *Store) ReleasePartial(agent string, opID edgesync.OpID) error {
	return s.updatePartial("release", agent, opID, false, 0, func(a *agentBucket, p *partialRec) error {
		return releaseReservation(a, p)
	})
}

// updatePartial runs fn on a partial op in one fsynced transaction (fn
// writes about size bytes of data), then deletes the garbage it left if
// collect; what names the operation in errors.
func (s *Store) updatePartial(what, agent string, opID edgesync.OpID, collect bool, size int, fn func(a *agentBucket, p *partialRec) error) error {
	if err := s.acquire(); err != nil {
		return fmt.Errorf("%s partial: %w", what, err)
	}
	defer s.release()
	err := s.updateSized(size, func(tx *bolt.Tx) error {
		a, p, err := getPartial(tx, agent, opID)
		if err != nil {
			return err
		}
		return fn(a, &p)
	})
	if err != nil {
		return fmt.Errorf("%s partial %s: %w", what, opID, err)
	}
	if collect {
		return s.collectGarbage(agent)
	}
	return nil
}

// releaseReservation makes p count only the bytes it holds.
func releaseReservation(a *agentBucket, p *partialRec) error {
	if p.reserved == p.held {
		return nil
	}
	if err := a.addStat(statReserved, p.held-p.reserved); err != nil {
		return err
	}
	p.reserved = p.held
	return a.partials.Put(p.hdr.OpID[:], p.encode())
}

// checkQuota refuses an op whose size would take the agent past its quota;
// already is what the op counts against the quota now (a released partial
// received again). A state op is credited with the size of the version it
// replaces.
func (s *Store) checkQuota(a *agentBucket, hdr PartialHeader, already int64) error {
	quota := s.cfg.Quota
	if s.cfg.AgentQuota != nil {
		quota = s.cfg.AgentQuota(a.name)
	}
	if quota <= 0 {
		return nil
	}
	used := a.stat(statBytes) + a.stat(statReserved)
	need := hdr.Size - already
	if hdr.Kind == edgesync.StateOp {
		if v := a.keys.Get([]byte(hdr.Key)); v != nil {
			if cur, err := decodeVersion(hdr.Key, v); err == nil {
				need -= cur.Size
			}
		}
	}
	if used+need > quota {
		return fmt.Errorf("%w: op of %d bytes with %d of %d bytes in use", ErrQuota, hdr.Size, used, quota)
	}
	return nil
}

// dropPartial deletes a partial op and frees its data.
func (s *Store) dropPartial(a *agentBucket, p partialRec) error {
	if err := a.partials.Delete(p.hdr.OpID[:]); err != nil {
		return err
	}
	if err := a.addStat(statReserved, -p.reserved); err != nil {
		return err
	}
	return s.freeBlob(a, p.blob, p.held)
}

// WritePartial appends data to a partial op. offset must equal the bytes
// already held (ErrOutOfOrder otherwise, naming both); writing past the
// declared size gives ErrTooLarge. The write is durable when it returns.
func (s *Store) WritePartial(agent string, opID edgesync.OpID, offset int64, data []byte) error {
	return s.updatePartial("write", agent, opID, false, len(data), func(a *agentBucket, p *partialRec) error {
		if offset != p.held {
			return fmt.Errorf("%w: write at offset %d, but %d bytes are held", ErrOutOfOrder, offset, p.held)
		}
		if p.held+int64(len(data)) > p.hdr.Size {
			return fmt.Errorf("%w: write of %d bytes at %d passes the declared size %d", ErrTooLarge, len(data), offset, p.hdr.Size)
		}
		h, err := restoreHash(p.hashState)
		if err != nil {
			return err
		}
		h.Write(data)
		if p.hashState, err = h.(encoding.BinaryMarshaler).MarshalBinary(); err != nil {
			return err
		}
		if err := writeChunks(a, p.blob, p.held, data, s.cfg.ChunkSize); err != nil {
			return err
		}
		p.held += int64(len(data))
		if p.held > p.reserved {
			// A write to a released partial: what it holds counts.
			if err := a.addStat(statReserved, p.held-p.reserved); err != nil {
				return err
			}
			p.reserved = p.held
		}
		p.updated = s.cfg.Now()
		return a.partials.Put(opID[:], p.encode())
	})
}

// getPartial finds the bucket of agent in tx and its partial op opID. The
// bucket is nil when the agent has none; otherwise it is returned with
// the partial's error too.
func getPartial(tx *bolt.Tx, agent string, opID edgesync.OpID) (*agentBucket, partialRec, error) {
	a, err := agentRO(tx, agent)
	if err != nil {
		return nil, partialRec{}, err
	}
	v := a.partials.Get(opID[:])
	if v == nil {
		return a, partialRec{}, fmt.Errorf("partial op: %w", ErrNotFound)
	}
	p, err := decodePartial(v)
	if err != nil {
		return a, partialRec{}, fmt.Errorf("partial op: %w", err)
	}
	return a, p, nil
}

func restoreHash(state []byte) (hash.Hash, error) {
	h := sha256.New()
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(state); err != nil {
		return nil, fmt.Errorf("%w: partial hash state: %v", ErrCorrupt, err)
	}
	return h, nil
}

// PartialSize returns how many bytes of a partial op are held, and false if
// there is no such partial op (or the store is closed).
func (s *Store) PartialSize(agent string, opID edgesync.OpID) (int64, bool) {
	if s.acquire() != nil {
		return 0, false
	}
	defer s.release()
	var held int64
	ok := false
	// Every error (no such agent or partial, a damaged record) means there
	// is no partial to resume: ok stays false, as documented.
	_ = s.viewTx(func(tx *bolt.Tx) error {
		_, p, err := getPartial(tx, agent, opID)
		if err != nil {
			return err
		}
		held, ok = p.held, true
		return nil
	})
	return held, ok
}

// DiscardPartial deletes a partial op and its data.
func (s *Store) DiscardPartial(agent string, opID edgesync.OpID) error {
	return s.updatePartial("discard", agent, opID, true, 0, func(a *agentBucket, p *partialRec) error {
		return s.dropPartial(a, *p)
	})
}

// CommitPartial finishes a partial op whose bytes have all arrived. It
// checks the SHA-256 of the assembled data (ErrHashMismatch, and the
// partial is discarded) and the delta base (ErrBaseMismatch, discarded),
// then in one fsynced transaction publishes the data as the key's current
// version or as a new event, and records the op ID as applied. A commit
// of an op that was already applied returns Duplicate.
func (s *Store) CommitPartial(agent string, opID edgesync.OpID) (Result, error) {
	if err := s.acquire(); err != nil {
		return Result{}, fmt.Errorf("commit partial: %w", err)
	}
	defer s.release()
	var res Result
	var refused error // the partial was discarded; the transaction still commits
	err := s.update(func(tx *bolt.Tx) error {
		res, refused = Result{}, nil
		if a, err := agentRO(tx, agent); err == nil {
			if err := s.foldAgent(tx, a); err != nil {
				return err
			}
		}
		a, p, err := getPartial(tx, agent, opID)
		if errors.Is(err, ErrNotFound) && a != nil && a.applied.Get(opID[:]) != nil {
			// Committed already (a repeated commit after a lost ack).
			r, derr := decodeApplied(a.applied.Get(opID[:]))
			if derr != nil {
				return fmt.Errorf("applied index: %w", derr)
			}
			res = Result{OpID: opID, Kind: r.kind, Key: r.key, Duplicate: true, Size: r.size, Hash: r.hash}
			if r.kind == edgesync.EventOp {
				res.Seq = r.ref
			} else {
				res.Version = r.ref
			}
			return a.addStat(statDedups, 1)
		}
		if err != nil {
			return err
		}
		if p.held != p.hdr.Size {
			return fmt.Errorf("%w: %d of %d bytes held", ErrIncomplete, p.held, p.hdr.Size)
		}
		h, err := restoreHash(p.hashState)
		if err != nil {
			return err
		}
		var sum [32]byte
		h.Sum(sum[:0])
		if sum != p.hdr.Hash {
			refused = fmt.Errorf("%w: data hashes to %x, op declared %x", ErrHashMismatch, sum[:8], p.hdr.Hash[:8])
			return s.dropPartial(a, p)
		}
		if err := a.partials.Delete(opID[:]); err != nil {
			return err
		}
		if err := a.addStat(statReserved, -p.reserved); err != nil {
			return err
		}
		res, err = s.publish(a, p.hdr, p.blob, nil)
		if errors.Is(err, ErrBaseMismatch) || res.Duplicate {
			refused = err
			return s.freeBlob(a, p.blob, p.held)
		}
		return err
	})
	if err == nil {
		err = refused
	}
	if gcErr := s.collectGarbage(agent); err == nil && gcErr != nil {
		err = gcErr
	}
	if err != nil {
		return res, fmt.Errorf("commit %s: %w", opID, err)
	}
	return res, nil
}

// publish makes the data in blob, or inline, the data itself (with blob
// 0), the key's current version or a new event and records the op as
// applied. The caller has verified the data's hash. For a duplicate op it
// returns Duplicate and changes nothing but the dedup counter; the caller
// frees blob.
func (s *Store) publish(a *agentBucket, hdr PartialHeader, blob uint64, inline []byte) (Result, error) {
	return s.publishAt(a, hdr, blob, inline, s.cfg.Now(), 0)
}

// publishAt is publish at time now; an event takes sequence number seq
// when it is not 0 (one that the journal gave it, store_journal.go).
func (s *Store) publishAt(a *agentBucket, hdr PartialHeader, blob uint64, inline []byte, now time.Time, seq uint64) (Result, error) {
	res := Result{OpID: hdr.OpID, Kind: hdr.Kind, Key: hdr.Key, Size: hdr.Size, Hash: hdr.Hash}
	if v := a.applied.Get(hdr.OpID[:]); v != nil {
		r, err := decodeApplied(v)
		if err != nil {
			return res, fmt.Errorf("applied index: %w", err)
		}
		res.Duplicate = true
		if r.kind == edgesync.EventOp {
			res.Seq = r.ref
		} else {
			res.Version = r.ref
		}
		return res, a.addStat(statDedups, 1)
	}
	var ref uint64 // the version (state) or sequence number (event)
	var err error
	switch hdr.Kind {
	case edgesync.StateOp:
		res.Version, res.Stale, err = s.publishState(a, hdr, blob, inline, now)
		ref = res.Version
	case edgesync.EventOp:
		res.Seq, err = s.publishEvent(a, hdr, blob, inline, now, seq)
		ref = res.Seq
	}
	if err != nil {
		return res, err
	}
	if err := s.supersedeSummary(a, hdr.Key, hdr.OpID); err != nil {
		return res, err
	}
	return res, s.recordApplied(a, hdr, ref, now)
}

// publishState makes blob the key's current version and returns its
// version counter. When a newer version is current already it frees blob
// and returns that version as stale; a delta whose base is not the current
// version gives ErrBaseMismatch.
func (s *Store) publishState(a *agentBucket, hdr PartialHeader, blob uint64, inline []byte, now time.Time) (version uint64, stale bool, err error) {
	var old *Version
	if v := a.keys.Get([]byte(hdr.Key)); v != nil {
		cur, err := decodeVersion(hdr.Key, v)
		if err != nil {
			return 0, false, err
		}
		old = &cur
	}
	if old != nil && old.OpID.Compare(hdr.OpID) > 0 {
		// A newer version is already current: the versions arrived out
		// of order (e.g. one was resumed after a cut). Keep the newer
		// one and record this op as applied, so that a redelivery is
		// acknowledged and never applied over the newer version.
		if err := s.freeBlob(a, blob, hdr.Size); err != nil {
			return 0, false, err
		}
		return old.Version, true, nil
	}
	if hdr.HasBase && (old == nil || old.Hash != hdr.BaseHash) {
		if old == nil {
			return 0, false, fmt.Errorf("%w: key %q has no current version", ErrBaseMismatch, hdr.Key)
		}
		return 0, false, fmt.Errorf("%w: key %q is at %x, delta is against %x", ErrBaseMismatch, hdr.Key, old.Hash[:8], hdr.BaseHash[:8])
	}
	nv := Version{Key: hdr.Key, OpID: hdr.OpID, Size: hdr.Size, Hash: hdr.Hash, Priority: hdr.Priority,
		Stored: now, Version: 1, blob: blob, inline: inline}
	delta := hdr.Size
	if old != nil {
		nv.Version = old.Version + 1
		delta -= old.Size
		if err := s.freeBlob(a, old.blob, old.Size); err != nil {
			return 0, false, err
		}
	} else if err := a.addStat(statKeys, 1); err != nil {
		return 0, false, err
	}
	if err := a.keys.Put([]byte(hdr.Key), nv.encode()); err != nil {
		return 0, false, err
	}
	if err := a.addStat(statBytes, delta); err != nil {
		return 0, false, err
	}
	return nv.Version, false, nil
}

// publishEvent stores blob as the agent's next event, or as event seq
// when it is not 0, returns its sequence number, and prunes the oldest
// events past the retention.
func (s *Store) publishEvent(a *agentBucket, hdr PartialHeader, blob uint64, inline []byte, now time.Time, seq uint64) (uint64, error) {
	if seq == 0 {
		var err error
		if seq, err = a.events.NextSequence(); err != nil {
			return 0, err
		}
	} else {
		if last := a.events.Sequence(); seq <= last {
			return 0, fmt.Errorf("%w: event %s numbered %d, after %d", ErrCorrupt, hdr.OpID, seq, last)
		}
		if err := a.events.SetSequence(seq); err != nil {
			return 0, err
		}
	}
	ev := Event{Seq: seq, OpID: hdr.OpID, Key: hdr.Key, Size: hdr.Size, Hash: hdr.Hash, Priority: hdr.Priority, Stored: now, blob: blob, inline: inline}
	if err := a.events.Put(u64b(seq), ev.encode()); err != nil {
		return 0, err
	}
	for _, st := range []struct {
		name []byte
		d    int64
	}{{statBytes, hdr.Size}, {statEvents, 1}, {statEventBytes, hdr.Size}} {
		if err := a.addStat(st.name, st.d); err != nil {
			return 0, err
		}
	}
	return seq, s.pruneEvents(a)
}

// recordApplied records the op as applied (ref is its version or sequence
// number), so that a redelivery is answered as a duplicate, and prunes the
// oldest records past the dedup retention.
func (s *Store) recordApplied(a *agentBucket, hdr PartialHeader, ref uint64, now time.Time) error {
	order, err := a.appliedq.NextSequence()
	if err != nil {
		return err
	}
	rec := appliedRec{at: now, order: order, kind: hdr.Kind, ref: ref, size: hdr.Size, hash: hdr.Hash, key: hdr.Key}
	if err := a.applied.Put(hdr.OpID[:], rec.encode()); err != nil {
		return err
	}
	if err := a.appliedq.Put(u64b(order), hdr.OpID[:]); err != nil {
		return err
	}
	if err := a.addStat(statApplied, 1); err != nil {
		return err
	}
	return s.pruneApplied(a, now, appliedPrunePerTx)
}

// Apply stores a whole op read from r in one call: it reads exactly
// hdr.Size bytes, verifies their SHA-256 and applies the op. Ops up to
// InlineMax are written in a single transaction; larger ones are staged as
// a partial op first (and swept at Open if the process dies meanwhile), so
// memory stays bounded by InlineMax.
func (s *Store) Apply(agent string, hdr PartialHeader, r io.Reader) (Result, error) {
	if err := checkAgent(agent); err != nil {
		return Result{}, fmt.Errorf("apply: %w", err)
	}
	if err := s.checkHeader(hdr); err != nil {
		return Result{}, fmt.Errorf("apply: %w", err)
	}
	if hdr.Size > s.cfg.InlineMax {
		return s.applyStaged(agent, hdr, r)
	}
	buf := make([]byte, hdr.Size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Result{}, fmt.Errorf("apply %s: reading %d bytes: %w", hdr.OpID, hdr.Size, err)
	}
	if n, _ := r.Read(make([]byte, 1)); n > 0 {
		return Result{}, fmt.Errorf("apply %s: %w: more data than the declared %d bytes", hdr.OpID, ErrTooLarge, hdr.Size)
	}
	return s.applyInline(agent, hdr, buf, false)
}

// ApplyWhole applies an op whose data is all in data, as Apply does, and
// drops a partial op of the same ID left by an earlier attempt, in the
// same transaction: the server's way for an op of one chunk (see
// WholeApplier).
func (s *Store) ApplyWhole(agent string, hdr PartialHeader, data []byte) (Result, error) {
	if err := checkAgent(agent); err != nil {
		return Result{}, fmt.Errorf("apply: %w", err)
	}
	if err := s.checkHeader(hdr); err != nil {
		return Result{}, fmt.Errorf("apply: %w", err)
	}
	if int64(len(data)) != hdr.Size {
		return Result{}, fmt.Errorf("apply %s: %w: %d bytes, op declared %d", hdr.OpID, ErrIncomplete, len(data), hdr.Size)
	}
	if hdr.Size > s.cfg.InlineMax {
		return s.applyStaged(agent, hdr, bytes.NewReader(data))
	}
	return s.applyInline(agent, hdr, data, true)
}

// inlineDataMax is the largest op whose data applyInline writes into its
// version or event record rather than into blob chunks (format 2): a
// small op then writes to one bucket of its agent's less, which is most
// of a small op's cost when many agents' ops share a transaction.
const inlineDataMax = 1 << 10

// applyInline applies an op of at most InlineMax bytes held in buf in one
// transaction; dropPartial drops a partial op of the same ID there.
func (s *Store) applyInline(agent string, hdr PartialHeader, buf []byte, dropPartial bool) (Result, error) {
	if sum := sha256.Sum256(buf); sum != hdr.Hash {
		return Result{}, fmt.Errorf("apply %s: %w: data hashes to %x, op declared %x", hdr.OpID, ErrHashMismatch, sum[:8], hdr.Hash[:8])
	}
	if err := s.acquire(); err != nil {
		return Result{}, fmt.Errorf("apply: %w", err)
	}
	defer s.release()
	var res Result
	queued := false // garbage queued: collect it after the commit
	err := s.updateSized(len(buf), s.inlineChange(agent, hdr, buf, dropPartial, &res, &queued))
	if queued {
		// Only then: the check that finds nothing costs a read
		// transaction per op.
		if gcErr := s.collectGarbage(agent); err == nil && gcErr != nil {
			err = gcErr
		}
	}
	if err != nil {
		return res, fmt.Errorf("apply %s: %w", hdr.OpID, err)
	}
	return res, nil
}

// inlineChange is the change of applyInline, run by the group commit
// (and so perhaps more than once): it sets *res and *queued afresh on
// each run.
func (s *Store) inlineChange(agent string, hdr PartialHeader, buf []byte, dropPartial bool, res *Result, queued *bool) func(*bolt.Tx) error {
	return func(tx *bolt.Tx) error {
		*queued = false
		*res = Result{}
		if hdr.Kind == edgesync.EventOp && len(buf) <= inlineDataMax {
			// A small event goes to the journal, shared with other
			// agents' (docs/core.md, "The journal").
			ok, r, err := s.journalApply(tx, agent, hdr, buf)
			if ok || err != nil {
				*res = r
				return err
			}
		}
		a, err := s.agentW(tx, agent)
		if err != nil {
			return err
		}
		defer func() { *queued = a.queued }()
		if v := a.partials.Get(hdr.OpID[:]); v != nil && dropPartial {
			p, err := decodePartial(v)
			if err != nil {
				return fmt.Errorf("partial %s: %w", hdr.OpID, err)
			}
			if err := s.dropPartial(a, p); err != nil {
				return err
			}
		}
		if a.applied.Get(hdr.OpID[:]) != nil {
			*res, err = s.publish(a, hdr, 0, nil) // only counts the duplicate
			return err
		}
		if err := s.checkQuota(a, hdr, 0); err != nil {
			return err
		}
		if len(buf) <= inlineDataMax {
			// A small op's data goes in its record: one page of the
			// agent's less to write (docs/core.md, "Group commit").
			*res, err = s.publish(a, hdr, 0, buf)
			return err
		}
		blob, err := a.blobs.NextSequence()
		if err != nil {
			return err
		}
		if err := writeChunks(a, blob, 0, buf, s.cfg.ChunkSize); err != nil {
			return err
		}
		*res, err = s.publish(a, hdr, blob, nil)
		return err // an error rolls back the chunks too
	}
}

// ApplyWholeOps applies several whole ops of one agent, as ApplyWhole
// applies each, in one call (see WholeOpsApplier): their changes join the
// group commit together, in their order, so that they share a
// transaction and its fsync rather than wait for one each. Each op gets
// its own result; one that fails (a quota refusal, a hash mismatch)
// fails alone. An op over InlineMax is staged as ApplyWhole stages it,
// in its turn.
func (s *Store) ApplyWholeOps(agent string, ops []WholeOp) []WholeResult {
	out := make([]WholeResult, len(ops))
	if err := checkAgent(agent); err != nil {
		for i := range out {
			out[i].Err = fmt.Errorf("apply: %w", err)
		}
		return out
	}
	var run []int // the ops of the next group, by index
	for i, op := range ops {
		hdr := op.Header
		if err := s.checkHeader(hdr); err != nil {
			out[i].Err = fmt.Errorf("apply: %w", err)
			continue
		}
		if int64(len(op.Data)) != hdr.Size {
			out[i].Err = fmt.Errorf("apply %s: %w: %d bytes, op declared %d", hdr.OpID, ErrIncomplete, len(op.Data), hdr.Size)
			continue
		}
		if hdr.Size > s.cfg.InlineMax {
			s.applyGroup(agent, ops, run, out)
			run = run[:0]
			out[i].Result, out[i].Err = s.applyStaged(agent, hdr, bytes.NewReader(op.Data))
			continue
		}
		if sum := sha256.Sum256(op.Data); sum != hdr.Hash {
			out[i].Err = fmt.Errorf("apply %s: %w: data hashes to %x, op declared %x", hdr.OpID, ErrHashMismatch, sum[:8], hdr.Hash[:8])
			continue
		}
		run = append(run, i)
	}
	s.applyGroup(agent, ops, run, out)
	return out
}

// applyGroup applies the ops of ops at the indices run, checked already,
// in one group of changes, and sets their results in out.
func (s *Store) applyGroup(agent string, ops []WholeOp, run []int, out []WholeResult) {
	if len(run) == 0 {
		return
	}
	if err := s.acquire(); err != nil {
		for _, i := range run {
			out[i].Err = fmt.Errorf("apply: %w", err)
		}
		return
	}
	defer s.release()
	sizes := make([]int, len(run))
	fns := make([]func(*bolt.Tx) error, len(run))
	queued := make([]bool, len(run))
	for k, i := range run {
		sizes[k] = len(ops[i].Data)
		fns[k] = s.inlineChange(agent, ops[i].Header, ops[i].Data, true, &out[i].Result, &queued[k])
	}
	errs := s.group.DoAll(sizes, fns)
	var gcErr error
	if slices.Contains(queued, true) {
		gcErr = s.collectGarbage(agent)
	}
	for k, i := range run {
		err := errs[k]
		if err == nil && queued[k] {
			err = gcErr
		}
		if err != nil {
			out[i].Err = fmt.Errorf("apply %s: %w", ops[i].Header.OpID, err)
		}
	}
}

func (s *Store) applyStaged(agent string, hdr PartialHeader, r io.Reader) (res Result, err error) {
	held, dup, err := s.beginPartial(agent, hdr, true)
	if err != nil {
		return Result{}, fmt.Errorf("apply: %w", err)
	}
	if dup {
		return s.duplicateResult(agent, hdr)
	}
	defer func() {
		if err == nil {
			return
		}
		// A refused commit has already dropped the partial (ErrNotFound).
		// One that stays is ephemeral and swept at the next Open; the
		// caller hears of it with the error that stopped the apply.
		if derr := s.DiscardPartial(agent, hdr.OpID); derr != nil && !errors.Is(derr, ErrNotFound) {
			err = fmt.Errorf("%w (discarding the partial failed too: %v)", err, derr)
		}
	}()
	if held > 0 {
		// An earlier Apply of this op was interrupted; r starts at zero.
		if _, err := io.CopyN(io.Discard, r, held); err != nil {
			return Result{}, fmt.Errorf("apply %s: skipping %d held bytes: %w", hdr.OpID, held, err)
		}
	}
	buf := make([]byte, min(s.cfg.InlineMax, hdr.Size-held))
	for held < hdr.Size {
		n, rerr := io.ReadFull(r, buf[:min(int64(len(buf)), hdr.Size-held)])
		if rerr != nil {
			return Result{}, fmt.Errorf("apply %s: reading at %d of %d bytes: %w", hdr.OpID, held, hdr.Size, rerr)
		}
		if err := s.WritePartial(agent, hdr.OpID, held, buf[:n]); err != nil {
			return Result{}, err
		}
		held += int64(n)
	}
	if n, _ := r.Read(make([]byte, 1)); n > 0 {
		return Result{}, fmt.Errorf("apply %s: %w: more data than the declared %d bytes", hdr.OpID, ErrTooLarge, hdr.Size)
	}
	return s.CommitPartial(agent, hdr.OpID)
}

// CheckBase returns nil if the key's current version hashes to baseHash,
// ErrBaseMismatch if it differs or the key has no version.
func (s *Store) CheckBase(agent, key string, baseHash [32]byte) error {
	v, _, err := s.Current(agent, key)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("check base: %w: key %q has no current version", ErrBaseMismatch, key)
	}
	if err != nil {
		return fmt.Errorf("check base: %w", err)
	}
	if !bytes.Equal(v.Hash[:], baseHash[:]) {
		return fmt.Errorf("check base: %w: key %q is at %x, delta is against %x", ErrBaseMismatch, key, v.Hash[:8], baseHash[:8])
	}
	return nil
}

// duplicateResult describes an op found in the applied index.
func (s *Store) duplicateResult(agent string, hdr PartialHeader) (Result, error) {
	res := Result{OpID: hdr.OpID, Kind: hdr.Kind, Key: hdr.Key, Size: hdr.Size, Hash: hdr.Hash, Duplicate: true}
	err := s.view(agent, func(a *agentBucket) error {
		v := a.applied.Get(hdr.OpID[:])
		if v == nil {
			return nil // pruned meanwhile; still a duplicate for this call
		}
		r, err := decodeApplied(v)
		if err != nil {
			return fmt.Errorf("applied index: %w", err)
		}
		if r.kind == edgesync.EventOp {
			res.Seq = r.ref
		} else {
			res.Version = r.ref
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("apply %s: %w", hdr.OpID, err)
	}
	return res, nil
}
