package core

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
)

// The journal (format 3, docs/core.md "The journal"): a small event
// applied whole is written, in the transaction that acknowledges it, to
// one bucket shared by every agent and keyed in arrival order, so that
// the ops of a group commit share a few leaf pages instead of each
// rewriting pages of its own agent's buckets. Its sequence number is
// given at once (from the agent's count in memory), so its Result is the
// one the op gets without the journal. A fold moves journal entries into
// their agents' buckets later, many ops per agent per transaction:
//
//   - in the store's goroutine (serveFold), once enough entries wait or
//     the journal has been quiet for a tick;
//   - before every read that needs them: reads of one agent (Events,
//     EventData, Summary, Summaries, Applied) fold its entries, Stats and
//     Sweep the whole journal; a read of one agent whose fold cannot be
//     written (a full disk) reads in a write transaction that folds and
//     is rolled back (viewUnwritten), and Stats counts the journal's
//     entries beside the buckets then;
//   - before any other change to an agent's buckets (a state op, a large
//     or duplicate event, a partial op, a summary), which folds that
//     agent's entries in the same transaction, so that every other path
//     sees the agent as if the journal did not exist;
//   - at Open, for what a crash left in it (left there if that fold
//     cannot be written).
//
// What the journal holds is known in memory (journalIndex): the op IDs in
// it, per agent their entries, bytes and next sequence number. It changes
// only inside write transactions, which run one at a time (updateTx
// holds txMu); one that rolls back rebuilds it from the journal bucket,
// which is then as before the transaction.
//
// An agent whose entries its buckets refuse (a damaged record there that
// the fold reads, such as the summary an event supersedes) is stuck: a
// fold of the whole journal leaves its entries, so that the other agents'
// folds, Stats, Sweep and Open go on, and its small events take the
// ordinary path from then on, which folds its entries first and so fails
// as its ops did before the journal. Its reads and changes fail, naming
// the damage, until the record is repaired; Stats counts its entries.

// The store's goroutine folds the journal once it holds foldAt entries
// and foldPerAgent for each agent in it (a fold writes pages of each
// agent's buckets: the more ops of each it moves, the fewer pages per
// op), or foldMax entries; foldMax bounds the entries one fold
// transaction moves too. foldEvery is the goroutine's tick: a journal
// that took no entry during a tick, or that was not folded for
// foldMaxAge, is folded then.
const (
	foldAt       = 8192
	foldPerAgent = 32
	foldMax      = 32768
	foldEvery    = 500 * time.Millisecond
	foldMaxAge   = 5 * time.Second
)

// journalIndex is what the journal bucket holds, in memory.
type journalIndex struct {
	txMu sync.Mutex // held by updateTx: the index changes only inside write transactions

	ops    map[journalOp]uint64     // entry of each op in the journal → its event sequence number
	agents map[string]*journalAgent // agents with entries
	dirty  bool                     // changed in the running transaction
	broken error                    // set when the index could not be rebuilt

	stuck    map[string]error // agents whose fold failed since Open, with its error
	anyStuck atomic.Bool      // stuck has an agent: the readers of stuck that take txMu only then

	noRoom atomic.Pointer[failedFold] // the last fold, if it found no room (a full disk)

	count    atomic.Int64  // entries, for the fold goroutine
	appended atomic.Int64  // entries ever appended, for the fold goroutine
	ticks    atomic.Int64  // the fold goroutine's ticks (tests)
	tries    atomic.Int64  // folds the fold goroutine began (tests)
	kick     chan struct{} // foldAt reached
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

type journalOp struct {
	agent string
	id    edgesync.OpID
}

// journalAgent is an agent's share of the journal.
type journalAgent struct {
	keys    []uint64 // journal keys of its entries, oldest first
	bytes   int64    // their data, which counts against its quota
	nextSeq uint64   // the sequence number of its next event
}

// journalRec is one journal entry: an event applied whole.
type journalRec struct {
	agent string
	seq   uint64
	hdr   PartialHeader
	at    time.Time
	data  []byte
}

func (r journalRec) encode() []byte {
	h := r.hdr
	n := 1 + maxVarint + len(r.agent) + 8 + 1 + 16 + maxVarint + len(h.Key) + 1 + 8 + 32 + 8 + maxVarint + len(r.data)
	return encSized(n).u8(recV1).str(r.agent).u64(r.seq).u8(kindCode(h.Kind)).raw(h.OpID[:]).
		str(h.Key).u8(uint8(h.Priority)).i64(h.Size).raw(h.Hash[:]).i64(r.at.UnixNano()).bytes(r.data)
}

func decodeJournal(k, b []byte) (journalRec, error) {
	d := dec{b: b}
	d.version("journal")
	r := journalRec{agent: string(d.bytes()), seq: d.u64()}
	r.hdr.Kind = d.kind()
	r.hdr.OpID = d.opID()
	r.hdr.Key = string(d.bytes())
	r.hdr.Priority = edgesync.Priority(d.u8())
	r.hdr.Size = d.i64()
	r.hdr.Hash = d.hash()
	r.at = d.time()
	r.data = d.bytes()
	switch {
	case d.err != nil:
	case len(k) != 8:
		d.err = fmt.Errorf("%w: key of %d bytes", ErrCorrupt, len(k))
	case len(d.b) != 0:
		d.err = fmt.Errorf("%w: %d bytes after the record", ErrCorrupt, len(d.b))
	case r.hdr.Kind != edgesync.EventOp:
		d.err = fmt.Errorf("%w: a state op", ErrCorrupt)
	case checkAgent(r.agent) != nil || checkKey(r.hdr.Key, r.hdr.Kind) != nil || !r.hdr.Priority.Valid() ||
		r.hdr.OpID.IsZero() || r.seq == 0:
		d.err = fmt.Errorf("%w: agent %q, key %q, priority %d, op %s, seq %d", ErrCorrupt,
			r.agent, r.hdr.Key, r.hdr.Priority, r.hdr.OpID, r.seq)
	case int64(len(r.data)) != r.hdr.Size:
		d.err = fmt.Errorf("%w: %d bytes of data held for %d", ErrCorrupt, len(r.data), r.hdr.Size)
	}
	if d.err != nil {
		return journalRec{}, fmt.Errorf("journal entry %x: %w", k, d.err)
	}
	return r, nil
}

// rebuild reads the index from the journal bucket.
func (j *journalIndex) rebuild(tx *bolt.Tx) error {
	j.ops, j.agents = map[journalOp]uint64{}, map[string]*journalAgent{}
	j.count.Store(0)
	jb := tx.Bucket(bktJournal)
	if jb == nil {
		return fmt.Errorf("%w: journal bucket missing", ErrCorrupt)
	}
	n := int64(0)
	err := jb.ForEach(func(k, v []byte) error {
		r, err := decodeJournal(k, v)
		if err != nil {
			return err
		}
		op := journalOp{r.agent, r.hdr.OpID}
		if _, ok := j.ops[op]; ok {
			return fmt.Errorf("journal entry %x: %w: op %s of %q twice", k, ErrCorrupt, r.hdr.OpID, r.agent)
		}
		ja := j.agents[r.agent]
		if ja == nil {
			ja = &journalAgent{}
			j.agents[r.agent] = ja
		}
		if r.seq < ja.nextSeq {
			return fmt.Errorf("journal entry %x: %w: seq %d of %q after %d", k, ErrCorrupt, r.seq, r.agent, ja.nextSeq-1)
		}
		ja.keys = append(ja.keys, beU64(k))
		ja.bytes += r.hdr.Size
		ja.nextSeq = r.seq + 1
		j.ops[op] = r.seq
		n++
		return nil
	})
	j.count.Store(n)
	return err
}

// loadJournal reads the journal index at Open.
func (s *Store) loadJournal() error {
	j := &s.jnl
	j.txMu.Lock()
	defer j.txMu.Unlock()
	if err := s.viewTx(j.rebuild); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// journalRolledBack brings the index back to the journal bucket after a
// write transaction that changed it did not commit.
func (s *Store) journalRolledBack() {
	j := &s.jnl
	j.dirty = false
	if err := s.viewTx(j.rebuild); err != nil {
		j.broken = fmt.Errorf("journal: %w", err)
		return
	}
	j.broken = nil
}

// journalApply writes a small event to the journal and returns true and
// its Result, or false when the op takes the ordinary path: its agent has
// no buckets yet, it was applied before (or is in the journal: the
// ordinary path folds it and answers the duplicate), a partial op of the
// same ID is held, or it may be over the quota (the ordinary path decides,
// after retention).
func (s *Store) journalApply(tx *bolt.Tx, agent string, hdr PartialHeader, data []byte) (bool, Result, error) {
	j := &s.jnl
	if j.broken != nil {
		return false, Result{}, j.broken
	}
	if _, ok := j.ops[journalOp{agent, hdr.OpID}]; ok {
		return false, Result{}, nil
	}
	// Only the sub-buckets it reads: with a thousand agents in a
	// transaction, opening all nine costs more than the op's write.
	b := tx.Bucket(bktAgents).Bucket([]byte(agent))
	if b == nil {
		return false, Result{}, nil
	}
	applied, partials := b.Bucket(bktApplied), b.Bucket(bktPartials)
	if applied == nil || partials == nil {
		return false, Result{}, fmt.Errorf("agent %q: %w: sub-bucket missing", agent, ErrCorrupt)
	}
	if applied.Get(hdr.OpID[:]) != nil || partials.Get(hdr.OpID[:]) != nil {
		return false, Result{}, nil
	}
	if _, ok := j.stuck[agent]; ok {
		return false, Result{}, nil // its fold fails: refused there, as before the journal
	}
	ja := j.agents[agent]
	if s.cfg.Quota > 0 || s.cfg.AgentQuota != nil {
		a, err := bindAgent(b, agent)
		if err != nil {
			return false, Result{}, err
		}
		held := int64(0)
		if ja != nil {
			held = ja.bytes
		}
		if s.checkQuota(a, hdr, -held) != nil {
			return false, Result{}, nil
		}
	}
	var seq uint64
	if ja != nil {
		seq = ja.nextSeq
	} else {
		events := b.Bucket(bktEvents)
		if events == nil {
			return false, Result{}, fmt.Errorf("agent %q: %w: sub-bucket missing", agent, ErrCorrupt)
		}
		seq = events.Sequence() + 1
	}
	jb := tx.Bucket(bktJournal)
	jb.FillPercent = seqFill
	k, err := jb.NextSequence()
	if err != nil {
		return false, Result{}, err
	}
	rec := journalRec{agent: agent, seq: seq, hdr: hdr, at: s.cfg.Now(), data: data}
	if err := jb.Put(u64b(k), rec.encode()); err != nil {
		return false, Result{}, err
	}
	j.dirty = true
	if ja == nil {
		ja = &journalAgent{}
		j.agents[agent] = ja
	}
	ja.keys = append(ja.keys, k)
	ja.bytes += hdr.Size
	ja.nextSeq = seq + 1
	j.ops[journalOp{agent, hdr.OpID}] = seq
	if n := j.count.Add(1); n >= foldMax || (n >= foldAt && n >= foldPerAgent*int64(len(j.agents))) {
		select {
		case j.kick <- struct{}{}:
		default:
		}
	}
	j.appended.Add(1)
	return true, Result{OpID: hdr.OpID, Kind: hdr.Kind, Key: hdr.Key, Size: hdr.Size, Hash: hdr.Hash, Seq: seq}, nil
}

// agentW returns an agent's buckets for a change, creating them on first
// use, with its journal entries folded into them.
func (s *Store) agentW(tx *bolt.Tx, agent string) (*agentBucket, error) {
	a, err := agentRW(tx, agent)
	if err != nil {
		return nil, err
	}
	return a, s.foldAgent(tx, a)
}

// foldAgent moves a's journal entries into its buckets.
func (s *Store) foldAgent(tx *bolt.Tx, a *agentBucket) error {
	j := &s.jnl
	if j.broken != nil {
		return j.broken
	}
	ja := j.agents[a.name]
	if ja == nil {
		return nil
	}
	jb := tx.Bucket(bktJournal)
	j.dirty = true
	recs := make([]journalRec, len(ja.keys))
	for i, k := range ja.keys {
		key := u64b(k)
		r, err := decodeJournal(key, jb.Get(key))
		if err != nil {
			return err
		}
		if r.agent != a.name {
			return fmt.Errorf("journal entry %x: %w: of %q, indexed for %q", key, ErrCorrupt, r.agent, a.name)
		}
		recs[i] = r
	}
	if err := s.foldAgentRecs(a, recs); err != nil {
		j.setStuck(a.name, err)
		return &foldAgentError{agent: a.name, err: err}
	}
	for i, k := range ja.keys {
		if err := jb.Delete(u64b(k)); err != nil {
			return err
		}
		delete(j.ops, journalOp{a.name, recs[i].hdr.OpID})
	}
	j.count.Add(-int64(len(ja.keys)))
	delete(j.agents, a.name)
	return nil
}

// foldSome moves up to max of the oldest journal entries into their
// agents' buckets in tx, each agent's at once (foldAgentRecs); it returns
// the agents whose garbage it queued and how many entries it moved.
func (s *Store) foldSome(tx *bolt.Tx, max int) (queued []string, n int, err error) {
	j := &s.jnl
	if j.broken != nil {
		return nil, 0, j.broken
	}
	jb := tx.Bucket(bktJournal)
	j.dirty = true
	// Group the entries by agent; their keys and values stay on bbolt's
	// pages, which hold until the commit, and are decoded one agent at a
	// time.
	type entry struct{ k, v []byte }
	byAgent := map[string][]entry{}
	var order []string
	var done [][]byte
	c := jb.Cursor()
	for k, v := c.First(); k != nil && len(done) < max; k, v = c.Next() {
		d := dec{b: v}
		d.version("journal")
		agent := d.bytes()
		if d.err != nil {
			return nil, 0, fmt.Errorf("journal entry %x: %w", k, d.err)
		}
		if _, ok := j.stuck[string(agent)]; ok {
			continue // left in the journal (stuck, above)
		}
		if byAgent[string(agent)] == nil {
			order = append(order, string(agent))
		}
		byAgent[string(agent)] = append(byAgent[string(agent)], entry{k, v})
		done = append(done, bytes.Clone(k))
	}
	for _, agent := range order {
		ents := byAgent[agent]
		ja := j.agents[agent]
		if ja == nil || len(ja.keys) < len(ents) {
			return nil, 0, fmt.Errorf("journal: %w: %d entries of %q, not in the index", ErrCorrupt, len(ents), agent)
		}
		recs := make([]journalRec, len(ents))
		for i, e := range ents {
			if ja.keys[i] != beU64(e.k) {
				return nil, 0, fmt.Errorf("journal entry %x: %w: not the next of %q in the index", e.k, ErrCorrupt, agent)
			}
			if recs[i], err = decodeJournal(e.k, e.v); err != nil {
				return nil, 0, err
			}
		}
		a, err := agentRW(tx, agent)
		if err == nil {
			err = s.foldAgentRecs(a, recs)
		}
		if err != nil {
			// The transaction rolls back; the fold runs again without
			// this agent's entries (fold).
			j.setStuck(agent, err)
			return nil, 0, &foldAgentError{agent: agent, err: err}
		}
		if a.queued {
			queued = append(queued, agent)
		}
		ja.keys = ja.keys[len(ents):]
		for _, r := range recs {
			ja.bytes -= r.hdr.Size
			delete(j.ops, journalOp{agent, r.hdr.OpID})
		}
		if len(ja.keys) == 0 {
			delete(j.agents, agent)
		}
	}
	for _, k := range done {
		if err := jb.Delete(k); err != nil {
			return nil, 0, err
		}
	}
	j.count.Add(-int64(len(done)))
	return queued, len(done), nil
}

// foldAgentRecs publishes an agent's journal entries, oldest first, as
// publishAt does one by one, but with its counters written and its
// retention applied once for all: what a fold saves per op besides pages.
func (s *Store) foldAgentRecs(a *agentBucket, recs []journalRec) error {
	var n, size int64
	var last time.Time
	for _, r := range recs {
		if a.applied.Get(r.hdr.OpID[:]) != nil {
			// Not written by this store: the journal takes no op that
			// is applied. Keep the one applied.
			continue
		}
		if prev := a.events.Sequence(); r.seq <= prev {
			return fmt.Errorf("%w: journal event %s numbered %d, after %d", ErrCorrupt, r.hdr.OpID, r.seq, prev)
		}
		if err := a.events.SetSequence(r.seq); err != nil {
			return err
		}
		ev := Event{Seq: r.seq, OpID: r.hdr.OpID, Key: r.hdr.Key, Size: r.hdr.Size, Hash: r.hdr.Hash,
			Priority: r.hdr.Priority, Stored: r.at, inline: r.data}
		if err := a.events.Put(u64b(r.seq), ev.encode()); err != nil {
			return err
		}
		if err := s.supersedeSummary(a, r.hdr.Key, r.hdr.OpID); err != nil {
			return err
		}
		order, err := a.appliedq.NextSequence()
		if err != nil {
			return err
		}
		rec := appliedRec{at: r.at, order: order, kind: r.hdr.Kind, ref: r.seq, size: r.hdr.Size, hash: r.hdr.Hash, key: r.hdr.Key}
		if err := a.applied.Put(r.hdr.OpID[:], rec.encode()); err != nil {
			return err
		}
		if err := a.appliedq.Put(u64b(order), r.hdr.OpID[:]); err != nil {
			return err
		}
		n++
		size += r.hdr.Size
		last = r.at
	}
	if n == 0 {
		return nil
	}
	for _, st := range []struct {
		name []byte
		d    int64
	}{{statBytes, size}, {statEvents, n}, {statEventBytes, size}, {statApplied, n}} {
		if err := a.addStat(st.name, st.d); err != nil {
			return err
		}
	}
	// As many rounds of retention as the ops would have run one by one.
	for i := int64(0); i <= n/eventPrunePerTx; i++ {
		if err := s.pruneEvents(a); err != nil {
			return err
		}
	}
	return s.pruneApplied(a, last, int(min(n*appliedPrunePerTx, 1<<20)))
}

// Fold moves every event waiting in the journal into its agent's
// buckets (docs/core.md, "The journal"). Reads that need them fold first,
// and the store's goroutine folds in the background, so callers need
// not; tests and benchmarks call it to fold at a point of their choosing.
// The entries of an agent whose buckets refuse them (stuck, above) stay,
// and the error names the agent.
func (s *Store) Fold() error {
	if err := s.acquire(); err != nil {
		return fmt.Errorf("fold: %w", err)
	}
	defer s.release()
	return s.fold()
}

// fold is Fold for a caller that holds the store (acquire). It folds the
// entries in the journal when it starts, not those appended meanwhile:
// chasing them would fold a few entries of each agent per transaction,
// which is what the journal saves.
//
// It leaves the entries of stuck agents, and then returns a *stuckError
// naming them, which callers that go on without those entries (Open,
// Stats, Sweep) pass over.
func (s *Store) fold() error {
	left := s.jnl.foldable()
	// The bound only guards against a bug.
	for round := 0; left > 0 && round < 1<<20; round++ {
		var queued []string
		var n int
		err := s.updateSized(int(min(left, foldMax))*64, func(tx *bolt.Tx) (err error) {
			queued, n, err = s.foldSome(tx, int(min(left, foldMax)))
			return err
		})
		if _, ok := errors.AsType[*foldAgentError](err); ok {
			continue // that agent is stuck now: again without its entries
		}
		if err != nil {
			if noRoom(err) {
				s.jnl.noRoom.Store(&failedFold{at: time.Now(), err: err})
			}
			return fmt.Errorf("fold journal: %w", err)
		}
		for _, agent := range queued {
			if err := s.collectGarbage(agent); err != nil {
				return err
			}
		}
		if n == 0 {
			break // folded meanwhile, by an agent's change
		}
		left -= int64(n)
	}
	s.jnl.noRoom.Store(nil)
	return s.jnl.stuckErr()
}

// failedFold is a fold that found no room.
type failedFold struct {
	at  time.Time
	err error
}

// foldAgentError is a fold's failure in one agent's buckets.
type foldAgentError struct {
	agent string
	err   error
}

func (e *foldAgentError) Error() string { return fmt.Sprintf("agent %q: %v", e.agent, e.err) }
func (e *foldAgentError) Unwrap() error { return e.err }

// stuckError names the stuck agents whose entries a fold left in the
// journal, with what their buckets refused.
type stuckError struct{ errs []error }

func (e *stuckError) Error() string {
	return fmt.Sprintf("fold journal: entries of %d agent(s) left in the journal: %v", len(e.errs), errors.Join(e.errs...))
}
func (e *stuckError) Unwrap() []error { return e.errs }

// passStuck is err unless it only says that stuck agents' entries were
// left in the journal.
func passStuck(err error) error {
	if _, ok := errors.AsType[*stuckError](err); ok {
		return nil
	}
	return err
}

// setStuck records that agent's fold failed with err; the caller holds
// txMu (a write transaction).
func (j *journalIndex) setStuck(agent string, err error) {
	if j.stuck == nil {
		j.stuck = map[string]error{}
	}
	j.stuck[agent] = err
	j.anyStuck.Store(true)
}

// foldable is the number of journal entries of agents that are not stuck.
func (j *journalIndex) foldable() int64 {
	n := j.count.Load()
	if n == 0 || !j.anyStuck.Load() {
		return n
	}
	j.txMu.Lock()
	defer j.txMu.Unlock()
	for agent := range j.stuck {
		if ja := j.agents[agent]; ja != nil {
			n -= int64(len(ja.keys))
		}
	}
	return n
}

// stuckErr returns a *stuckError naming the stuck agents with entries in
// the journal, or nil.
func (j *journalIndex) stuckErr() error {
	if !j.anyStuck.Load() {
		return nil
	}
	j.txMu.Lock()
	defer j.txMu.Unlock()
	var errs []error
	for agent, err := range j.stuck {
		if j.agents[agent] != nil {
			errs = append(errs, &foldAgentError{agent: agent, err: err})
		}
	}
	if len(errs) == 0 {
		return nil
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return &stuckError{errs: errs}
}

// stuckCounts returns what the journal holds of each stuck agent, as the
// counters its fold would have added.
func (j *journalIndex) stuckCounts() map[string]AgentStats {
	if !j.anyStuck.Load() {
		return nil
	}
	j.txMu.Lock()
	defer j.txMu.Unlock()
	return j.countsLocked(false)
}

// countsLocked returns what the journal holds of each stuck agent, or of
// every agent if all, for a caller that holds txMu.
func (j *journalIndex) countsLocked(all bool) map[string]AgentStats {
	out := map[string]AgentStats{}
	for agent, ja := range j.agents {
		if _, stuck := j.stuck[agent]; all || stuck {
			n := int64(len(ja.keys))
			out[agent] = AgentStats{Events: n, Applied: n, Bytes: ja.bytes, EventBytes: ja.bytes}
		}
	}
	return out
}

// errUnwritten rolls back the write transaction of viewUnwritten.
var errUnwritten = errors.New("a read's fold, not to be written")

// viewUnwritten runs fn, a read that folds what it needs of the journal
// first, in a write transaction that is rolled back: a read whose fold
// could not be written (foldErr: a full disk) sees what that fold would
// have written, for as long as the fold cannot be. The journal's index
// is read again after it (updateTx). It returns foldErr if fn fails too.
func (s *Store) viewUnwritten(foldErr error, fn func(*bolt.Tx) error) error {
	err := s.updateTx(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return errUnwritten
	})
	switch {
	case errors.Is(err, errUnwritten):
		return nil
	case err != nil:
		return fmt.Errorf("%w (and read without writing it: %v)", foldErr, err)
	}
	return nil
}

// foldForRead folds the journal, if it holds anything, for a read that
// needs every op in its agent's buckets; a stuck agent's entries stay in
// the journal (Stats counts them).
func (s *Store) foldForRead() error {
	if s.jnl.count.Load() == 0 {
		return nil
	}
	if f := s.jnl.noRoom.Load(); f != nil && time.Since(f.at) < foldMaxAge {
		// A fold of the whole journal found no room a moment ago: not
		// tried again for every read, as it holds the writes back as
		// long as one that succeeds.
		return fmt.Errorf("fold journal: %w", f.err)
	}
	return passStuck(s.fold())
}

// foldAgentForRead folds agent's journal entries, if it has any, for a
// read of its buckets: a read of one agent does not wait for a fold of
// every agent's.
func (s *Store) foldAgentForRead(agent string) error {
	j := &s.jnl
	if j.count.Load() == 0 {
		return nil
	}
	j.txMu.Lock() // the index changes only in write transactions, which hold it
	has := j.agents[agent] != nil
	stuck := j.stuck[agent]
	j.txMu.Unlock()
	if !has {
		return nil
	}
	if stuck != nil {
		// Its fold failed already: the same damage, without a write
		// transaction per read.
		return fmt.Errorf("fold journal: %w", &foldAgentError{agent: agent, err: stuck})
	}
	queued := false
	err := s.update(func(tx *bolt.Tx) error {
		queued = false
		a, err := agentRO(tx, agent)
		if err != nil {
			return err
		}
		err = s.foldAgent(tx, a)
		queued = a.queued
		return err
	})
	if err != nil {
		return fmt.Errorf("fold journal: %w", err)
	}
	if queued {
		return s.collectGarbage(agent)
	}
	return nil
}

// startFold starts the store's goroutine that folds the journal; Close
// stops it (closeFold).
func (s *Store) startFold() {
	j := &s.jnl
	j.kick, j.stop, j.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go s.serveFold()
}

func (s *Store) serveFold() {
	j := &s.jnl
	defer close(j.done)
	t := time.NewTicker(foldEvery)
	defer t.Stop()
	last, lastFold := j.appended.Load(), time.Now()
	// failed is when the last fold failed (a full disk): it is tried
	// again foldMaxAge later, not at every quiet tick, as a failed fold
	// holds the writes back as long as one that succeeds.
	var failed time.Time
	for {
		select {
		case <-j.stop:
			return
		case <-j.kick:
		case <-t.C:
			j.ticks.Add(1)
			n := j.appended.Load()
			quiet := n == last
			last = n
			if !quiet && time.Since(lastFold) < foldMaxAge {
				continue
			}
		}
		if j.count.Load() == 0 {
			lastFold = time.Now()
			continue
		}
		if !failed.IsZero() && time.Since(failed) < foldMaxAge {
			continue
		}
		if s.acquire() != nil {
			return
		}
		// A failed fold leaves the entries in the journal, where reads
		// find them; a full disk shows in the writes it refuses, a
		// stuck agent in its own reads and changes.
		j.tries.Add(1)
		failed = time.Time{}
		if passStuck(s.fold()) != nil {
			failed = time.Now()
		}
		s.release()
		// A fold holds the appends back: the next tick is quiet only
		// if none came after it.
		lastFold, last = time.Now(), j.appended.Load()
		t.Reset(foldEvery)
	}
}

// closeFold stops the fold goroutine and waits for it.
func (s *Store) closeFold() {
	j := &s.jnl
	if j.stop == nil {
		return
	}
	j.once.Do(func() { close(j.stop) })
	<-j.done
}
