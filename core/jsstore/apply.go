package jsstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
)

// How an op becomes visible, exactly once, whichever cores receive it
// (docs/jetstream.md, "Exactly once"). An event on a replicated store is
// one atomic batch of its marker and itself (events.go); every other op
// takes these steps:
//
//  1. The data is durable first: in memory for a small op (the commit
//     writes it in one message), in the data stream for a large one, whose
//     SHA-256 the commit checks by reading it back.
//  2. The op ID is created in the applied bucket (KV Create: exactly one
//     writer succeeds). The entry means "this op may have been applied".
//  3. The effect: the state entry, written with a compare-and-set on the
//     key's last revision and only if no newer op is current; or the
//     event, published with the op ID as Nats-Msg-Id.
//  4. Large ops only: the blob's owner marker, then the partial record is
//     removed.
//
// A core that finds the op ID already created (step 2 failed: another
// core, or itself before a crash, got there first) checks whether the
// effect is visible: the key's current op is this one or newer, or an
// event with this op ID is in the stream. If it is, the op is a
// duplicate; if not, it finishes step 3 with the data it holds. A crash
// between any two steps therefore leaves either nothing visible (the
// agent, which has no acknowledgement, sends the op again) or the whole op.
//
// Events need care beyond the stream's duplicate window W: a publish is
// de-duplicated by Nats-Msg-Id only against publishes of the last W. A
// core publishes an event only while it is sure that any earlier publish
// of the same op is either visible to it or within W of its own: the
// core that created the entry publishes within W/2 of creating it; one
// that found the entry first scans the key's events for the op ID and
// publishes within W/2 of starting the scan (Timeout < W/2 bounds a
// publish in flight).

// errConflict means another core changed the same record meanwhile, or a
// step ran out of time; the server answers "internal" and the agent sends
// the op again.
var errConflict = errors.New("changed by another core meanwhile, or too slow; try again")

// eventScanMargin is how far before the applied entry's time the search
// for an event starts: it absorbs clock differences between NATS nodes.
const eventScanMargin = time.Hour

// BeginPartial starts receiving an op, or resumes it: it returns how many
// bytes are held (0 for a new op), here or in JetStream, whichever core
// received them. A large op applied before returns dup. A small op (up to
// InlineMax) is not looked up in the applied index here, to spare a
// request on every op's way: its commit reports Result.Duplicate. A
// header that differs from the held partial's restarts the op. The
// declared size counts against the agent's quota (core.ErrQuota).
func (s *Store) BeginPartial(agent string, hdr core.PartialHeader) (int64, bool, error) {
	return s.beginPartial(agent, hdr, false)
}

func (s *Store) beginPartial(agent string, hdr core.PartialHeader, ephemeral bool) (held int64, dup bool, err error) {
	defer markFull(&err)
	if err := core.CheckOp(agent, hdr, s.cfg.MaxObjectSize); err != nil {
		return 0, false, fmt.Errorf("begin partial: %w", err)
	}
	if err := s.acquire(); err != nil {
		return 0, false, fmt.Errorf("begin partial: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	held, dup, err = s.begin(ctx, agent, hdr, ephemeral)
	if err != nil {
		return 0, false, fmt.Errorf("begin partial %s: %w", hdr.OpID, err)
	}
	return held, dup, nil
}

func (s *Store) small(size int64) bool { return size <= s.cfg.InlineMax }

func (s *Store) begin(ctx context.Context, agent string, hdr core.PartialHeader, ephemeral bool) (int64, bool, error) {
	now := s.cfg.Now()
	if s.small(hdr.Size) {
		if h, held, ok := s.mem.get(agent, hdr.OpID); ok {
			if h == hdr {
				return held, false, s.reserveAgainMem(ctx, agent, hdr)
			}
			s.discardMem(agent, hdr.OpID)
		}
		if err := s.reserveFor(ctx, agent, hdr, true); err != nil {
			return 0, false, err
		}
		for _, d := range s.mem.add(agent, hdr, now, ephemeral, s.cfg.MemoryBytes) {
			s.counters.addLocal(d.agent, -d.size)
		}
		return 0, false, nil
	}
	if ok, err := s.appliedVisible(ctx, agent, hdr.OpID); err != nil {
		return 0, false, err
	} else if ok {
		s.counters.add(agent, core.AgentStats{Dedups: 1})
		return 0, true, nil
	}
	return s.beginStaged(ctx, agent, hdr, now, ephemeral)
}

func (s *Store) beginStaged(ctx context.Context, agent string, hdr core.PartialHeader, now time.Time, ephemeral bool) (int64, bool, error) {
	for range casRetries {
		rec, rev, err := s.getPartial(ctx, agent, hdr.OpID)
		switch {
		case err == nil && rec.header() == hdr && !rec.Released:
			return rec.Held, false, nil
		case err == nil && rec.header() == hdr:
			if err := s.reserveAgain(ctx, agent, rec, rev); errors.Is(err, errConflict) {
				continue
			} else if err != nil {
				return 0, false, err
			}
			return rec.Held, false, nil
		case err == nil:
			if err := s.dropPartial(ctx, agent, rec); err != nil {
				return 0, false, err
			}
		case !errors.Is(err, core.ErrNotFound):
			return 0, false, err
		}
		if err := s.reserveFor(ctx, agent, hdr, false); err != nil {
			return 0, false, err
		}
		b, err := json.Marshal(newPartialRec(agent, hdr, nuid.Next(), now, ephemeral))
		if err != nil {
			return 0, false, err
		}
		_, err = s.partials.Create(ctx, agentKey(agent, hdr.OpID.String()), b)
		if err == nil {
			return 0, false, nil
		}
		s.counters.add(agent, core.AgentStats{Reserved: -hdr.Size})
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, false, fmt.Errorf("partial record: %w", s.kvFull(bucketPartials, err))
		}
		// Another core began the same op at this moment: take its record.
	}
	return 0, false, errConflict
}

// reserveFor counts a new partial op against the agent's quota; a state
// op is credited with the size of the version it replaces. local is for
// an op held in this core's memory, whose reservation is never shared.
func (s *Store) reserveFor(ctx context.Context, agent string, hdr core.PartialHeader, local bool) error {
	return s.reserveSize(ctx, agent, hdr, hdr.Size, local)
}

// reserveSize is reserveFor for size bytes of the op: the part of its
// declared size that a released partial received again reserves anew.
func (s *Store) reserveSize(ctx context.Context, agent string, hdr core.PartialHeader, size int64, local bool) error {
	quota := s.cfg.Quota
	if s.cfg.AgentQuota != nil {
		quota = s.cfg.AgentQuota(agent)
	}
	var credit int64
	if quota > 0 && hdr.Kind == edgesync.StateOp {
		cur, _, err := s.getState(ctx, agent, hdr.Key)
		if err != nil {
			return err
		}
		if cur != nil {
			credit = cur.size
		}
	}
	return s.reserve(ctx, agent, size, credit, quota, local)
}

// getPartial reads a partial record and its revision; core.ErrNotFound
// when there is none.
func (s *Store) getPartial(ctx context.Context, agent string, op edgesync.OpID) (partialRec, uint64, error) {
	e, err := s.partials.Get(ctx, agentKey(agent, op.String()))
	if err != nil {
		return partialRec{}, 0, fmt.Errorf("partial op: %w", notFound(err))
	}
	var rec partialRec
	if err := decodeJSON("partial", e.Value(), &rec); err != nil {
		return partialRec{}, 0, err
	}
	return rec, e.Revision(), nil
}

// WritePartial appends data to a partial op. offset must equal the bytes
// held (core.ErrOutOfOrder otherwise); writing past the declared size
// gives core.ErrTooLarge. A large op's write is durable in JetStream when
// it returns.
func (s *Store) WritePartial(agent string, opID edgesync.OpID, offset int64, data []byte) (err error) {
	defer markFull(&err)
	if err := s.acquire(); err != nil {
		return fmt.Errorf("write partial: %w", err)
	}
	defer s.release()
	if found, grew, err := s.mem.write(agent, opID, offset, data, s.cfg.Now()); found {
		if err != nil {
			return fmt.Errorf("write partial %s: %w", opID, err)
		}
		if grew > 0 {
			s.counters.addLocal(agent, grew) // a write to a released partial: what it holds counts
		}
		return nil
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.writeStaged(ctx, agent, opID, offset, data); err != nil {
		return fmt.Errorf("write partial %s: %w", opID, err)
	}
	return nil
}

func (s *Store) writeStaged(ctx context.Context, agent string, opID edgesync.OpID, offset int64, data []byte) error {
	rec, rev, cached := s.records.get(agent, opID)
	if !cached || offset != rec.Held {
		// Not written through this core just now, or moved on by another.
		var err error
		if rec, rev, err = s.getPartial(ctx, agent, opID); err != nil {
			return err
		}
	}
	if offset != rec.Held {
		return fmt.Errorf("%w: write at offset %d, but %d bytes are held", core.ErrOutOfOrder, offset, rec.Held)
	}
	if rec.Held+int64(len(data)) > rec.Size {
		return fmt.Errorf("%w: write of %d bytes at %d passes the declared size %d", core.ErrTooLarge, len(data), offset, rec.Size)
	}
	if err := s.writeChunks(ctx, agent, rec.Blob, offset, data); err != nil {
		return err
	}
	hook("chunks-written")
	rec.Held += int64(len(data))
	rec.Updated = s.cfg.Now()
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	rev, err = s.partials.Update(ctx, agentKey(agent, opID.String()), b, rev)
	if err != nil {
		// The chunks just written are left over; readers skip them (see
		// blob.go).
		s.records.forget(agent, opID)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
			return errConflict
		}
		return fmt.Errorf("partial record: %w", s.kvFull(bucketPartials, err))
	}
	s.records.put(agent, rec, rev)
	if rec.Released {
		s.counters.add(agent, core.AgentStats{Reserved: int64(len(data))}) // what it holds counts
	}
	return nil
}

// recentRecords are the partial records this core wrote last, with their
// revisions, so that the next write of the same op needs no read; a
// record another core changed meanwhile fails its compare-and-set.
type recentRecords struct {
	mu sync.Mutex
	m  map[memKey]recentRecord
}

type recentRecord struct {
	rec partialRec
	rev uint64
}

// maxRecent bounds the records remembered.
const maxRecent = 4096

func (r *recentRecords) get(agent string, op edgesync.OpID) (partialRec, uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x, ok := r.m[memKey{agent, op}]
	return x.rec, x.rev, ok
}

func (r *recentRecords) put(agent string, rec partialRec, rev uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil || len(r.m) >= maxRecent {
		r.m = map[memKey]recentRecord{}
	}
	r.m[memKey{agent, rec.Op}] = recentRecord{rec, rev}
}

func (r *recentRecords) forget(agent string, op edgesync.OpID) {
	r.mu.Lock()
	delete(r.m, memKey{agent, op})
	r.mu.Unlock()
}

// PartialSize returns how many bytes of a partial op are held, and false
// if there is none (or the store is closed or unreachable).
func (s *Store) PartialSize(agent string, opID edgesync.OpID) (int64, bool) {
	if s.acquire() != nil {
		return 0, false
	}
	defer s.release()
	if _, held, ok := s.mem.get(agent, opID); ok {
		return held, true
	}
	ctx, cancel := s.ctx()
	defer cancel()
	rec, _, err := s.getPartial(ctx, agent, opID)
	if err != nil {
		return 0, false
	}
	return rec.Held, true
}

// DiscardPartial deletes a partial op and its data.
func (s *Store) DiscardPartial(agent string, opID edgesync.OpID) error {
	if err := s.acquire(); err != nil {
		return fmt.Errorf("discard partial: %w", err)
	}
	defer s.release()
	if s.discardMem(agent, opID) {
		return nil
	}
	ctx, cancel := s.ctx()
	defer cancel()
	rec, _, err := s.getPartial(ctx, agent, opID)
	if err == nil {
		err = s.dropPartial(ctx, agent, rec)
	}
	if err != nil {
		return fmt.Errorf("discard partial %s: %w", opID, err)
	}
	return nil
}

// discardMem drops a partial held in memory and reports whether there
// was one.
func (s *Store) discardMem(agent string, op edgesync.OpID) bool {
	p, ok := s.mem.take(agent, op)
	if ok {
		s.counters.addLocal(agent, -p.reserved)
	}
	return ok
}

// dropPartial deletes a partial record, then its chunks (a crash between
// leaves chunks that garbage collection removes, never a record without
// its data).
func (s *Store) dropPartial(ctx context.Context, agent string, rec partialRec) error {
	s.records.forget(agent, rec.Op)
	if err := s.removeRecord(ctx, s.partialsS, s.n.bucket(bucketPartials), agentKey(agent, rec.Op.String())); err != nil {
		return err
	}
	s.counters.add(agent, core.AgentStats{Reserved: -rec.reserved()})
	return s.purgeBlob(ctx, s.n.dataSubject(agent, rec.Blob))
}

// removeRecord removes every message of a KV key, leaving no delete
// marker behind (partial records come and go by the million).
func (s *Store) removeRecord(ctx context.Context, st jetstream.Stream, bucket, key string) error {
	if err := st.Purge(ctx, jetstream.WithPurgeSubject("$KV."+bucket+"."+key)); err != nil {
		return fmt.Errorf("remove %s %s: %w", bucket, key, err)
	}
	return nil
}

// CommitPartial finishes a partial op whose bytes have all arrived: it
// checks the SHA-256 of the data (core.ErrHashMismatch, and the partial is
// discarded) and the delta base (core.ErrBaseMismatch, discarded), then
// makes the op visible exactly once (see the top of this file). A commit
// of an op applied already returns Duplicate.
func (s *Store) CommitPartial(agent string, opID edgesync.OpID) (_ core.Result, err error) {
	defer markFull(&err)
	if err := s.acquire(); err != nil {
		return core.Result{}, fmt.Errorf("commit partial: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	res, err := s.commitPartial(ctx, agent, opID)
	if err != nil {
		return res, fmt.Errorf("commit %s: %w", opID, err)
	}
	return res, nil
}

func (s *Store) commitPartial(ctx context.Context, agent string, opID edgesync.OpID) (core.Result, error) {
	if p, ok := s.mem.take(agent, opID); ok {
		return s.commitMem(ctx, agent, p)
	}
	rec, _, err := s.getPartial(ctx, agent, opID)
	if errors.Is(err, core.ErrNotFound) {
		// Committed already (a repeated commit after a lost ack)?
		if res, ok, aerr := s.appliedResult(ctx, agent, opID); aerr != nil {
			return res, aerr
		} else if ok {
			return res, nil
		}
	}
	if err != nil {
		return core.Result{}, err
	}
	return s.commitStaged(ctx, agent, rec)
}

// commitMem commits a small op held in memory. A refusal drops it; any
// other failure puts it back, so that the agent's next commit finds it.
func (s *Store) commitMem(ctx context.Context, agent string, p *memPartial) (core.Result, error) {
	hdr := p.hdr
	if int64(len(p.buf)) != hdr.Size {
		s.restoreMem(agent, p)
		return core.Result{}, fmt.Errorf("%w: %d of %d bytes held", core.ErrIncomplete, len(p.buf), hdr.Size)
	}
	if sum := sha256.Sum256(p.buf); sum != hdr.Hash {
		s.counters.addLocal(agent, -p.reserved)
		return core.Result{}, fmt.Errorf("%w: data hashes to %x, op declared %x", core.ErrHashMismatch, sum[:8], hdr.Hash[:8])
	}
	res, _, err := s.commit(ctx, agent, hdr, p.buf, "")
	if err != nil && !errors.Is(err, core.ErrBaseMismatch) {
		s.restoreMem(agent, p)
		return res, err
	}
	s.counters.addLocal(agent, -p.reserved)
	return res, err
}

// restoreMem puts a partial back in memory, or releases its reservation
// if the op was begun again meanwhile.
func (s *Store) restoreMem(agent string, p *memPartial) {
	if !s.mem.restore(agent, p) {
		s.counters.addLocal(agent, -p.reserved)
	}
}

// commitStaged commits an op whose data is in the data stream.
func (s *Store) commitStaged(ctx context.Context, agent string, rec partialRec) (core.Result, error) {
	hdr := rec.header()
	if rec.Held != rec.Size {
		return core.Result{}, fmt.Errorf("%w: %d of %d bytes held", core.ErrIncomplete, rec.Held, rec.Size)
	}
	blob := s.n.dataSubject(agent, rec.Blob)
	sum, err := s.hashBlob(blob, rec.Size)
	if errors.Is(err, core.ErrNotFound) {
		err = fmt.Errorf("%w: %w", core.ErrHashMismatch, err) // the agent sends it again in full
	}
	if err == nil && sum != hdr.Hash {
		err = fmt.Errorf("%w: data hashes to %x, op declared %x", core.ErrHashMismatch, sum[:8], hdr.Hash[:8])
	}
	if err != nil {
		if errors.Is(err, core.ErrHashMismatch) {
			if derr := s.dropPartial(ctx, agent, rec); derr != nil {
				return core.Result{}, fmt.Errorf("%w (discarding the partial failed too: %v)", err, derr)
			}
		}
		return core.Result{}, err
	}
	var data []byte
	ref := blob
	if s.small(hdr.Size) {
		// Staged although small (memory was full): stored inline.
		if data, err = s.readBlob(blob, hdr.Size); err != nil {
			return core.Result{}, err
		}
		ref = ""
	}
	res, used, err := s.commit(ctx, agent, hdr, data, ref)
	if errors.Is(err, core.ErrBaseMismatch) {
		if derr := s.dropPartial(ctx, agent, rec); derr != nil {
			return res, fmt.Errorf("%w (discarding the partial failed too: %v)", err, derr)
		}
		return res, err
	}
	if err != nil {
		return res, err // the partial stays: the agent's next commit finishes the op
	}
	hook("staged-visible")
	if used {
		owner := "state"
		if hdr.Kind == edgesync.EventOp {
			owner = "event"
		}
		if err := s.markOwner(ctx, blob, owner, hdr.Key, res.Seq); err != nil {
			return res, err
		}
	}
	hook("staged-marked")
	s.records.forget(agent, rec.Op)
	if err := s.removeRecord(ctx, s.partialsS, s.n.bucket(bucketPartials), agentKey(agent, rec.Op.String())); err != nil {
		return res, err
	}
	s.counters.add(agent, core.AgentStats{Reserved: -rec.reserved()})
	if !used {
		if err := s.purgeBlob(ctx, blob); err != nil {
			s.cfg.Logger.Warn("data of a duplicate or stale op not deleted; garbage collection will", "subject", blob, "error", err)
		}
	}
	return res, nil
}

// commit makes an op visible exactly once: data is its bytes (inline) or
// nil with blob naming its chunks. used reports whether the visible
// effect refers to blob.
func (s *Store) commit(ctx context.Context, agent string, hdr core.PartialHeader, data []byte, blob string) (res core.Result, used bool, err error) {
	if hdr.Kind == edgesync.EventOp && s.layoutChanged.Load() {
		return core.Result{}, false, s.errLayout()
	}
	if hdr.Kind == edgesync.EventOp && s.batches {
		return s.commitEvent(ctx, agent, hdr, data, blob) // one atomic batch (events.go)
	}
	if hdr.Kind == edgesync.EventOp && s.markersLive() {
		// Applied while the store used batches (events.go)?
		eff, _, err := s.markerEffect(ctx, agent, hdr.OpID)
		if err != nil {
			return core.Result{}, false, err
		}
		if eff.visible {
			return s.duplicateEvent(agent, hdr, eff, blob)
		}
	}
	b, err := s.appliedValue(hdr)
	if err != nil {
		return core.Result{}, false, err
	}
	key := agentKey(agent, hdr.OpID.String())
	if hdr.HasBase {
		// Checked again by the state entry's compare-and-set; checked here
		// so that a delta against another base leaves no applied entry.
		cur, _, err := s.getState(ctx, agent, hdr.Key)
		if err != nil {
			return core.Result{}, false, err
		}
		if cur == nil || cur.op.Compare(hdr.OpID) < 0 && cur.hash != hdr.BaseHash {
			return core.Result{}, false, baseMismatch(hdr, cur)
		}
	}
	start := time.Now()
	err = s.createApplied(ctx, key, b)
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return core.Result{}, false, fmt.Errorf("applied index: %w", err)
	}
	hook("applied-created")
	if err != nil {
		// Created before: by another core, or by one that died before the
		// effect. Visible already?
		e, gerr := s.oc().applied.Get(ctx, key)
		if gerr != nil {
			return core.Result{}, false, fmt.Errorf("applied index: %w", gerr)
		}
		var prev appliedRec
		if err := decodeJSON("applied", e.Value(), &prev); err != nil {
			return core.Result{}, false, err
		}
		start = time.Now()
		eff, err := s.effect(ctx, agent, hdr.OpID, prev.Kind, prev.Key, e.Created())
		if err != nil {
			return core.Result{}, false, err
		}
		if eff.visible {
			s.counters.add(agent, core.AgentStats{Dedups: 1})
			eff.res.Duplicate = true
			eff.res.Size, eff.res.Hash = hdr.Size, hdr.Hash
			return eff.res, blob != "" && eff.data == blob, nil
		}
	}
	if hdr.Kind == edgesync.EventOp {
		return s.publishEvent(ctx, agent, hdr, data, blob, start.Add(s.cfg.DuplicateWindow/2))
	}
	res, used, err = s.publishState(ctx, agent, hdr, data, blob)
	if errors.Is(err, core.ErrBaseMismatch) {
		// The key changed since the check above: the op is not
		// applied, and its entry must not say it may be. Safe to
		// remove: no core can make this delta's effect visible now.
		if rerr := s.removeRecord(ctx, s.appliedS, s.n.bucket(bucketApplied), key); rerr != nil {
			return res, false, fmt.Errorf("%w (its applied entry stays: %v)", err, rerr)
		}
	}
	return res, used, err
}

// createApplied creates an applied entry (KV Create, published in a
// group): jetstream.ErrKeyExists if the key has an entry.
func (s *Store) createApplied(ctx context.Context, key string, value []byte) error {
	c := s.oc()
	_, err := s.publish(ctx, c, expectLastSubjSeq(&nats.Msg{Subject: "$KV." + s.n.bucket(bucketApplied) + "." + key, Data: value}, 0))
	if isWrongLastSeq(err) {
		// An entry exists, or a delete marker that KV Create writes over:
		// it tells them apart.
		_, err = c.applied.Create(ctx, key, value)
	}
	return err
}

// getState reads the current state entry of a key: nil (and the
// revision of a delete marker, or 0) when there is none.
func (s *Store) getState(ctx context.Context, agent, key string) (*meta, uint64, error) {
	return s.lastEntry(ctx, s.oc().stateS, s.n.stateSubject(agent, key))
}

// lastEntry reads the last message of a KV key: nil when there is none
// or it is a delete marker (then with the marker's revision).
func (s *Store) lastEntry(ctx context.Context, st jetstream.Stream, subject string) (*meta, uint64, error) {
	m, err := st.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", subject, err)
	}
	if m.Header.Get(kvOperation) != "" {
		return nil, m.Sequence, nil
	}
	md, err := parseMeta(m.Header)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", subject, err)
	}
	md.value = m.Data
	return &md, m.Sequence, nil
}

// kvOperation is the header of KV delete and purge markers.
const kvOperation = "KV-Operation"

// publishState makes the op the key's current version, unless a newer op
// is current (Stale) or the op already is (Duplicate).
func (s *Store) publishState(ctx context.Context, agent string, hdr core.PartialHeader, data []byte, blob string) (core.Result, bool, error) {
	res := core.Result{OpID: hdr.OpID, Kind: hdr.Kind, Key: hdr.Key, Size: hdr.Size, Hash: hdr.Hash}
	subject := s.n.stateSubject(agent, hdr.Key)
	for range casRetries {
		cur, rev, err := s.getState(ctx, agent, hdr.Key)
		if err != nil {
			return res, false, err
		}
		if cur != nil && cur.op == hdr.OpID {
			s.counters.add(agent, core.AgentStats{Dedups: 1})
			res.Duplicate, res.Version = true, cur.version
			return res, blob != "" && cur.data == blob, nil
		}
		if cur != nil && cur.op.Compare(hdr.OpID) > 0 {
			// A newer version is current: this op is applied but not kept,
			// so that a redelivery never replaces the newer one.
			res.Stale, res.Version = true, cur.version
			return res, false, nil
		}
		if hdr.HasBase && (cur == nil || cur.hash != hdr.BaseHash) {
			return res, false, baseMismatch(hdr, cur)
		}
		m := meta{agent: agent, key: hdr.Key, op: hdr.OpID, kind: hdr.Kind, priority: hdr.Priority, size: hdr.Size,
			hash: hdr.Hash, version: 1, stored: s.cfg.Now(), data: blob}
		if cur != nil {
			m.version = cur.version + 1
		}
		_, err = s.publish(ctx, s.oc(), expectLastSubjSeq(&nats.Msg{Subject: subject, Header: m.header(), Data: data}, rev))
		if isWrongLastSeq(err) {
			continue // another op of the key was stored meanwhile
		}
		if err != nil {
			return res, false, fmt.Errorf("state %q: %w", hdr.Key, err)
		}
		d := core.AgentStats{Bytes: hdr.Size}
		if cur == nil {
			d.Keys = 1
		} else {
			d.Bytes -= cur.size
		}
		s.counters.add(agent, d)
		if cur != nil && cur.data != "" {
			// The replaced version's data; if this fails (or the core dies
			// first), garbage collection finds the blob's owner gone.
			if err := s.purgeBlob(ctx, cur.data); err != nil {
				s.cfg.Logger.Warn("replaced data not deleted; garbage collection will", "subject", cur.data, "error", err)
			}
		}
		res.Version = m.version
		return res, blob != "", nil
	}
	return res, false, errConflict
}

// publishEvent publishes the op as the agent's next event, with the op ID
// as Nats-Msg-Id, if it can before deadline (see the top of this file).
func (s *Store) publishEvent(ctx context.Context, agent string, hdr core.PartialHeader, data []byte, blob string, deadline time.Time) (core.Result, bool, error) {
	res := core.Result{OpID: hdr.OpID, Kind: hdr.Kind, Key: hdr.Key, Size: hdr.Size, Hash: hdr.Hash}
	if !time.Now().Before(deadline) {
		return res, false, errConflict
	}
	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	msg := s.eventMsg(agent, hdr, data, blob)
	if s.markerGuard {
		noMarker(msg, s.n.markerSubject(agent, hdr.OpID))
	}
	ack, err := s.publish(pctx, s.oc(), msgID(msg, agentKey(agent, hdr.OpID.String())))
	if isWrongLastSeq(err) {
		// The op has a marker: a core with batches applied it (events.go).
		return s.markedEvent(ctx, res, agent, hdr, blob)
	}
	if err != nil {
		return res, false, fmt.Errorf("event: %w", err)
	}
	res.Seq = ack.Sequence
	if ack.Duplicate {
		// Published by another core within the window.
		s.counters.add(agent, core.AgentStats{Dedups: 1})
		res.Duplicate = true
		used := false
		if blob != "" {
			if prev, err := s.events.GetMsg(ctx, ack.Sequence); err == nil {
				used = prev.Header.Get(HdrData) == blob
			}
		}
		return res, used, nil
	}
	s.counters.add(agent, core.AgentStats{Events: 1, EventBytes: hdr.Size, Bytes: hdr.Size})
	return res, blob != "", nil
}

func baseMismatch(hdr core.PartialHeader, cur *meta) error {
	if cur == nil {
		return fmt.Errorf("%w: key %q has no current version", core.ErrBaseMismatch, hdr.Key)
	}
	return fmt.Errorf("%w: key %q is at %x, delta is against %x", core.ErrBaseMismatch, hdr.Key, cur.hash[:8], hdr.BaseHash[:8])
}

// effectOf is what a core finds of an op whose applied entry exists.
type effectOf struct {
	visible bool
	res     core.Result
	data    string // the visible effect's chunks, if not inline
}

// effect looks for an applied op's effect: the key's current version is
// this op or a newer one; or an event with this op ID, published after
// the entry was created (since, the entry's time) less a margin.
func (s *Store) effect(ctx context.Context, agent string, op edgesync.OpID, kind edgesync.OpKind, key string, since time.Time) (effectOf, error) {
	eff := effectOf{res: core.Result{OpID: op, Kind: kind, Key: key}}
	if kind == edgesync.StateOp {
		cur, _, err := s.getState(ctx, agent, key)
		if err != nil || cur == nil || cur.op.Compare(op) < 0 {
			return eff, err
		}
		eff.visible, eff.res.Version, eff.res.Stale = true, cur.version, cur.op != op
		if cur.op == op {
			eff.data = cur.data
		}
		return eff, nil
	}
	start := since.Add(-eventScanMargin)
	want := op.String()
	err := s.scan(ctx, s.events, jetstream.ConsumerConfig{
		FilterSubject: s.n.eventSubject(agent, key), HeadersOnly: true,
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
	}, func(m jetstream.Msg) error {
		if m.Headers().Get(HdrOp) != want {
			return nil
		}
		md, err := m.Metadata()
		if err != nil {
			return err
		}
		eff.visible, eff.res.Seq, eff.data = true, md.Sequence.Stream, m.Headers().Get(HdrData)
		return errStop
	})
	return eff, err
}

// appliedVisible reports whether op's applied entry exists and its effect
// is visible. If so, and a partial record of the op is left (its core
// died before step 4), it finishes step 4.
func (s *Store) appliedVisible(ctx context.Context, agent string, op edgesync.OpID) (bool, error) {
	eff, _, err := s.appliedEffect(ctx, agent, op)
	if err != nil || !eff.visible {
		return false, err
	}
	rec, _, err := s.getPartial(ctx, agent, op)
	if errors.Is(err, core.ErrNotFound) {
		return true, nil
	}
	if err == nil {
		err = s.finishPartial(ctx, agent, rec, eff)
	}
	return true, err
}

// finishPartial removes the partial record of an op whose effect is
// visible, marking the blob's owner first if the effect uses it, and
// dropping the blob if not.
func (s *Store) finishPartial(ctx context.Context, agent string, rec partialRec, eff effectOf) error {
	blob := s.n.dataSubject(agent, rec.Blob)
	if eff.data != blob {
		return s.dropPartial(ctx, agent, rec)
	}
	owner := "state"
	if rec.Kind == edgesync.EventOp {
		owner = "event"
	}
	if err := s.markOwner(ctx, blob, owner, rec.Key, eff.res.Seq); err != nil {
		return err
	}
	s.records.forget(agent, rec.Op)
	if err := s.removeRecord(ctx, s.partialsS, s.n.bucket(bucketPartials), agentKey(agent, rec.Op.String())); err != nil {
		return err
	}
	s.counters.add(agent, core.AgentStats{Reserved: -rec.reserved()})
	return nil
}

// appliedResult describes an op applied before, as a Duplicate; ok is
// false when it was not (or its effect is not visible).
func (s *Store) appliedResult(ctx context.Context, agent string, op edgesync.OpID) (core.Result, bool, error) {
	eff, rec, err := s.appliedEffect(ctx, agent, op)
	if err != nil || !eff.visible {
		return core.Result{}, false, err
	}
	eff.res.Duplicate, eff.res.Size, eff.res.Hash = true, rec.Size, rec.SHA256
	return eff.res, true, nil
}

// appliedEffect reads op's applied entry, in the applied bucket (state
// ops, and events applied before the events' markers) or as an event's
// marker (events.go), and looks for its effect; no entry is no effect.
func (s *Store) appliedEffect(ctx context.Context, agent string, op edgesync.OpID) (effectOf, appliedRec, error) {
	eff, rec, err := s.legacyEffect(ctx, agent, op)
	if err != nil || eff.visible {
		return eff, rec, err
	}
	return s.markerEffect(ctx, agent, op)
}

// Applied reports whether op was applied: its entry is in the applied
// index and its effect is visible (an entry whose effect a crash cut off
// is not applied: the op is finished when it comes again).
func (s *Store) Applied(agent string, opID edgesync.OpID) (bool, error) {
	if err := s.acquire(); err != nil {
		return false, fmt.Errorf("applied: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	ok, err := s.appliedVisible(ctx, agent, opID)
	if err != nil {
		return false, fmt.Errorf("applied: %w", err)
	}
	return ok, nil
}

// Apply stores a whole op read from r in one call, as core.Store.Apply
// does: it reads exactly hdr.Size bytes and verifies their SHA-256. Ops up
// to InlineMax go straight to their commit; larger ones are staged as a
// partial op first (not offered for resume; discarded on a failure before
// its commit, kept for the op's next send after a failed commit, which may
// have made it visible).
func (s *Store) Apply(agent string, hdr core.PartialHeader, r io.Reader) (_ core.Result, err error) {
	defer markFull(&err) // the state ops of a stream of several come here (applyops.go)
	if err := core.CheckOp(agent, hdr, s.cfg.MaxObjectSize); err != nil {
		return core.Result{}, fmt.Errorf("apply: %w", err)
	}
	if !s.small(hdr.Size) {
		return s.applyStaged(agent, hdr, r)
	}
	buf := make([]byte, hdr.Size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return core.Result{}, fmt.Errorf("apply %s: reading %d bytes: %w", hdr.OpID, hdr.Size, err)
	}
	if n, _ := r.Read(make([]byte, 1)); n > 0 {
		return core.Result{}, fmt.Errorf("apply %s: %w: more data than the declared %d bytes", hdr.OpID, core.ErrTooLarge, hdr.Size)
	}
	if sum := sha256.Sum256(buf); sum != hdr.Hash {
		return core.Result{}, fmt.Errorf("apply %s: %w: data hashes to %x, op declared %x", hdr.OpID, core.ErrHashMismatch, sum[:8], hdr.Hash[:8])
	}
	if err := s.acquire(); err != nil {
		return core.Result{}, fmt.Errorf("apply: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.reserveFor(ctx, agent, hdr, true); err != nil {
		return core.Result{}, fmt.Errorf("apply %s: %w", hdr.OpID, err)
	}
	res, _, err := s.commit(ctx, agent, hdr, buf, "")
	s.counters.addLocal(agent, -hdr.Size)
	if err != nil {
		return res, fmt.Errorf("apply %s: %w", hdr.OpID, err)
	}
	return res, nil
}

func (s *Store) applyStaged(agent string, hdr core.PartialHeader, r io.Reader) (res core.Result, err error) {
	held, dup, err := s.beginPartial(agent, hdr, true)
	if err != nil {
		return core.Result{}, fmt.Errorf("apply: %w", err)
	}
	if dup {
		return s.duplicateResult(agent, hdr)
	}
	committing := false
	defer func() {
		// A commit that failed may have made the op visible before a later
		// step (the owner marker refused at the data stream's limit): its
		// partial stays, as CommitPartial's does, and the op sent again
		// finishes it (or is committed from it).
		if err == nil || committing {
			return
		}
		if derr := s.DiscardPartial(agent, hdr.OpID); derr != nil && !errors.Is(derr, core.ErrNotFound) {
			err = fmt.Errorf("%w (discarding the partial failed too: %v)", err, derr)
		}
	}()
	if held > 0 {
		if _, err := io.CopyN(io.Discard, r, held); err != nil {
			return core.Result{}, fmt.Errorf("apply %s: skipping %d held bytes: %w", hdr.OpID, held, err)
		}
	}
	buf := make([]byte, min(int64(s.cfg.ChunkSize)*4, hdr.Size-held))
	for held < hdr.Size {
		n, rerr := io.ReadFull(r, buf[:min(int64(len(buf)), hdr.Size-held)])
		if rerr != nil {
			return core.Result{}, fmt.Errorf("apply %s: reading at %d of %d bytes: %w", hdr.OpID, held, hdr.Size, rerr)
		}
		if err := s.WritePartial(agent, hdr.OpID, held, buf[:n]); err != nil {
			return core.Result{}, err
		}
		held += int64(n)
	}
	if n, _ := r.Read(make([]byte, 1)); n > 0 {
		return core.Result{}, fmt.Errorf("apply %s: %w: more data than the declared %d bytes", hdr.OpID, core.ErrTooLarge, hdr.Size)
	}
	committing = true
	return s.CommitPartial(agent, hdr.OpID)
}

// duplicateResult describes an op BeginPartial found applied.
func (s *Store) duplicateResult(agent string, hdr core.PartialHeader) (core.Result, error) {
	if err := s.acquire(); err != nil {
		return core.Result{}, fmt.Errorf("apply: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	res, _, err := s.appliedResult(ctx, agent, hdr.OpID)
	res.OpID, res.Kind, res.Key, res.Size, res.Hash, res.Duplicate = hdr.OpID, hdr.Kind, hdr.Key, hdr.Size, hdr.Hash, true
	if err != nil {
		return res, fmt.Errorf("apply %s: %w", hdr.OpID, err)
	}
	return res, nil
}

// CheckBase returns nil if the key's current version hashes to baseHash,
// core.ErrBaseMismatch if it differs or the key has no version.
func (s *Store) CheckBase(agent, key string, baseHash [32]byte) error {
	v, _, err := s.Current(agent, key)
	if errors.Is(err, core.ErrNotFound) {
		return fmt.Errorf("check base: %w: key %q has no current version", core.ErrBaseMismatch, key)
	}
	if err != nil {
		return fmt.Errorf("check base: %w", err)
	}
	if !bytes.Equal(v.Hash[:], baseHash[:]) {
		return fmt.Errorf("check base: %w: key %q is at %x, delta is against %x", core.ErrBaseMismatch, key, v.Hash[:8], baseHash[:8])
	}
	return nil
}

// isWrongLastSeq reports a failed compare-and-set (code 10071, or 10164
// on replicated streams).
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// hook is called between the writes of a commit with the step's name;
// tests set it to kill the process there (crash_test.go).
var hook = func(string) {}
