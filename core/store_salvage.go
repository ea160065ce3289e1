package core

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/atomicfile"
)

// SalvageReport says what Salvage copied and what it could not.
type SalvageReport struct {
	// VerifyReport counts what was copied; its Damaged lists the records
	// not copied.
	VerifyReport
	// Aside is where the damaged file was moved (SalvageInPlace).
	Aside string `json:"aside,omitempty"`
	// Rebuilt counts applied-index entries written again from the
	// version or event record of their op, whose own entry was damaged.
	Rebuilt int `json:"rebuilt_applied"`
	// Dropped counts partial ops (being received) not copied: their
	// agents send them again from the start.
	Dropped int `json:"dropped_partials"`
	// Unmarked counts applied-index entries not copied because their
	// op's version or event was damaged: an agent that still holds such
	// an op and sends it again has it stored again.
	Unmarked int `json:"unmarked_applied"`
}

// SalvageOptions tunes Salvage.
type SalvageOptions struct {
	// LockTimeout bounds the wait for the file lock; default 1 s.
	LockTimeout time.Duration
	// Progress, if set, is called after each transaction of the copy is
	// committed, with the records and data chunks written so far.
	Progress func(records int)
	// Now names the damaged file (SalvageInPlace); default time.Now.
	Now func() time.Time
}

// salvageCommitBytes is how much data one transaction of the copy writes
// (a variable for the crash test, which kills a salvage between two).
var salvageCommitBytes = 16 << 20

// SalvageTemp is the name of the copy SalvageInPlace builds beside the
// store at path before it takes the store's place.
func SalvageTemp(path string) string { return path + ".salvage" }

// SalvageInPlace salvages the store at path (the core stopped): it copies
// every intact record into SalvageTemp(path), moves the damaged file
// aside to PATH.damaged-TIME and puts the copy in its place. It is
// crash-safe: until the copy is complete and synced, the store at path
// is untouched, and a leftover copy from a killed run is removed first;
// the damaged file gets its second name (a hard link) before the copy
// replaces it with one rename, so path always names one of the two.
func SalvageInPlace(path string, opts SalvageOptions) (SalvageReport, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	tmp := SalvageTemp(path)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return SalvageReport{}, err
	}
	if _, err := os.Stat(path); err != nil {
		return SalvageReport{}, err
	}
	r, err := Salvage(path, tmp, opts)
	if err != nil {
		_ = os.Remove(tmp)
		return r, err
	}
	r.Aside = path + ".damaged-" + opts.Now().UTC().Format("20060102T150405Z")
	if err := os.Link(path, r.Aside); err != nil {
		_ = os.Remove(tmp)
		return r, fmt.Errorf("keep the damaged file as %s: %w", r.Aside, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return r, fmt.Errorf("put the copy in place (the damaged file is at %s and %s, the copy at %s): %w", path, r.Aside, tmp, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		return r, err
	}
	return r, nil
}

// Salvage copies every record of the store at src that reads back intact
// into a new store at dst, which must not exist: versions and events with
// their data, sequence numbers and op IDs, summaries, the applied index
// and the journal's entries. An op whose applied-index entry is damaged
// but whose version or event survived gets its entry again from that
// record, so that its agent's resend is answered as a duplicate; an op
// whose version or event was not copied loses its entry, so that a
// resend stores it again (salvageWriter.applied). Partial
// ops are not copied (their agents send them again); the agents' counters
// are counted again from what was copied. dst is read back whole before
// Salvage returns.
func Salvage(src, dst string, opts SalvageOptions) (SalvageReport, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = time.Second
	}
	r := SalvageReport{VerifyReport: VerifyReport{Path: src}}
	sdb, err := openRO(src, opts.LockTimeout)
	if err != nil {
		return r, err
	}
	defer sdb.Close()
	if _, err := os.Stat(dst); err == nil {
		return r, fmt.Errorf("salvage: %s exists", dst)
	}
	ddb, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: opts.LockTimeout, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return r, fmt.Errorf("salvage: create %s: %w", dst, err)
	}
	w := &salvageWriter{db: ddb, rep: &r, progress: opts.Progress}
	err = w.begin()
	if err == nil {
		err = sdb.View(func(tx *bolt.Tx) error {
			walkStore(tx, &r.VerifyReport, w)
			return w.err
		})
	}
	if err == nil {
		err = w.finish()
	} else if w.tx != nil {
		_ = w.tx.Rollback()
	}
	if cerr := ddb.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return r, fmt.Errorf("salvage: write %s: %w", dst, err)
	}
	// Read the copy back as verify does, changing nothing: Open would
	// apply retention bounds that need not be the core's.
	back, err := VerifyFile(dst, opts.LockTimeout)
	if err == nil && !back.OK() {
		err = fmt.Errorf("%w: %s: %s", ErrCorrupt, back.Damaged[0].Bucket, back.Damaged[0].Reason)
	}
	if err != nil {
		return r, fmt.Errorf("salvage: the copy does not read back: %w", err)
	}
	return r, nil
}

// salvageWriter writes the intact records walkStore finds into the new
// store, in transactions of about salvageCommitBytes.
type salvageWriter struct {
	db       *bolt.DB
	tx       *bolt.Tx
	rep      *SalvageReport
	progress func(int)
	pending  int
	records  int
	err      error // the first write error: the walk stops copying
	jseq     uint64

	// The agent being copied.
	agentName               string
	seqEvents, seqBlobs     uint64 // the source's bucket sequences, raised to what was copied
	nextOrder               uint64 // the applied order of an entry written again
	dedups, evicted         int64  // counters that cannot be counted again
	keys, events, summaries int64
	bytes, eventBytes       int64
	appliedN                int64

	// The applied index (salvageWriter.applied): the entries the
	// versions and events copied would have, and what was not copied.
	proposed   map[edgesync.OpID]salvageApplied
	copied     map[edgesync.OpID]bool
	lostSeqs   map[uint64]bool
	lostKeys   map[string]edgesync.OpID // key → the op its damaged record named, if it decoded
	copiedKeys map[string]bool
	minSeq     uint64                      // the oldest event copied
	keyApplied map[string][]salvageApplied // applied entries of state ops on lost keys, held until the end
}

func (w *salvageWriter) begin() (err error) {
	if w.tx, err = w.db.Begin(true); err != nil {
		return err
	}
	return createLayout(w.tx)
}

// grow counts n bytes and one record written, and commits once enough
// are pending.
func (w *salvageWriter) grow(n int) error {
	w.pending += n
	w.records++
	if w.pending < salvageCommitBytes {
		return nil
	}
	if err := w.tx.Commit(); err != nil {
		w.tx = nil
		return w.fail(err)
	}
	w.pending = 0
	if w.progress != nil {
		w.progress(w.records)
	}
	tx, err := w.db.Begin(true)
	w.tx = tx
	return w.fail(err)
}

func (w *salvageWriter) fail(err error) error {
	if err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *salvageWriter) finish() error {
	if w.err != nil {
		return w.err
	}
	jb := w.tx.Bucket(bktJournal)
	if jseq := max(w.jseq, jb.Sequence()); jseq > 0 {
		if err := jb.SetSequence(jseq); err != nil {
			return err
		}
	}
	err := w.tx.Commit()
	w.tx = nil
	if err == nil && w.progress != nil {
		w.progress(w.records)
	}
	return err
}

func (w *salvageWriter) bucket() (*agentBucket, error) {
	if w.err != nil {
		return nil, w.err
	}
	a, err := agentRW(w.tx, w.agentName)
	return a, w.fail(err)
}

// agent starts an agent: the source's sequences of its events, blobs and
// applied order, and its counters that cannot be counted again.
func (w *salvageWriter) agent(name string, seqEvents, seqBlobs, seqOrder uint64, stats *bolt.Bucket) error {
	w.agentName, w.seqEvents, w.seqBlobs, w.nextOrder = name, seqEvents, seqBlobs, seqOrder+1
	w.proposed, w.copied, w.lostSeqs = map[edgesync.OpID]salvageApplied{}, map[edgesync.OpID]bool{}, map[uint64]bool{}
	w.lostKeys, w.keyApplied, w.minSeq = map[string]edgesync.OpID{}, map[string][]salvageApplied{}, 0
	w.copiedKeys = map[string]bool{}
	w.keys, w.events, w.summaries, w.bytes, w.eventBytes, w.appliedN = 0, 0, 0, 0, 0, 0
	w.dedups, w.evicted = 0, 0
	if stats != nil {
		_ = protect(func() error {
			a := &agentBucket{stats: stats}
			w.dedups, w.evicted = a.stat(statDedups), a.stat(statEvicted)
			return nil
		})
	}
	_, err := w.bucket()
	return err
}

// applied copies an entry of the applied index, unless the version or
// event of its op was damaged and not copied: without its entry, an op its
// agent still holds and sends again is stored again, which is what the
// store lost. An event's record was lost when verify named its sequence
// number, or when it is newer than the oldest event copied (retention
// drops the oldest first, damage any), or, with no event copied, when its
// number is above the count of events retention dropped (numbers start at
// 1). A state op's version was lost when the damaged record of its key
// named it, or, when no record of its key was copied (keys are never
// deleted) and none named an op, when it is the newest op the index has
// for the key (held until endAgent). docs/integrity.md, "The core's store".
func (w *salvageWriter) applied(_ string, k []byte, ar appliedRec) error {
	var id edgesync.OpID
	copy(id[:], k)
	rec := salvageApplied{id, ar}
	if !w.copied[id] {
		switch {
		case rec.kind == edgesync.EventOp && (w.lostSeqs[rec.ref] || (w.minSeq != 0 && rec.ref > w.minSeq) ||
			(w.minSeq == 0 && rec.ref > uint64(w.evicted))):
			w.rep.Unmarked++
			return nil
		case rec.kind == edgesync.StateOp && w.lostKeys[rec.key] == id:
			w.rep.Unmarked++
			return nil
		case rec.kind == edgesync.StateOp && !w.copiedKeys[rec.key]:
			w.keyApplied[rec.key] = append(w.keyApplied[rec.key], rec)
			return nil
		}
	}
	return w.putApplied(rec, false)
}

// salvageApplied is an applied-index entry with its op ID (the entry's key).
type salvageApplied struct {
	op edgesync.OpID
	appliedRec
}

// putApplied writes an applied entry; a rebuilt one takes the next order.
func (w *salvageWriter) putApplied(rec salvageApplied, rebuilt bool) error {
	a, err := w.bucket()
	if err != nil {
		return err
	}
	if rebuilt {
		rec.order = w.nextOrder
		w.rep.Rebuilt++
	}
	if err := a.applied.Put(bytes.Clone(rec.op[:]), rec.appliedRec.encode()); err != nil {
		return w.fail(err)
	}
	if err := a.appliedq.Put(u64b(rec.order), bytes.Clone(rec.op[:])); err != nil {
		return w.fail(err)
	}
	delete(w.proposed, rec.op)
	w.nextOrder = max(w.nextOrder, rec.order+1)
	w.appliedN++
	return w.grow(len(rec.key) + 100)
}

// lostKey notes a key whose version record was damaged, and the op it
// named if it decoded that far.
func (w *salvageWriter) lostKey(key string, id edgesync.OpID) { w.lostKeys[key] = id }

// lostEvent notes the sequence number of a damaged event record.
func (w *salvageWriter) lostEvent(seq uint64) { w.lostSeqs[seq] = true }

// copyBlob copies the chunks of blob from the source.
func (w *salvageWriter) copyBlob(src *bolt.Bucket, blob uint64) error {
	if blob == 0 {
		return nil
	}
	w.seqBlobs = max(w.seqBlobs, blob)
	return eachChunk(src, blob, func(k, v []byte) error {
		a, err := w.bucket()
		if err != nil {
			return err
		}
		if err := a.blobs.Put(k, v); err != nil {
			return w.fail(err)
		}
		return w.grow(len(v))
	})
}

// record copies a version (into keys) or an event (into events) with
// the chunks of its blob, and notes the applied entry its op should have.
func (w *salvageWriter) record(k, v []byte, blob uint64, src *bolt.Bucket, into func(*agentBucket) *bolt.Bucket, rec salvageApplied) error {
	if err := w.copyBlob(src, blob); err != nil {
		return w.fail(err)
	}
	a, err := w.bucket()
	if err != nil {
		return err
	}
	if err := into(a).Put(k, v); err != nil {
		return w.fail(err)
	}
	w.copied[rec.op] = true
	w.proposed[rec.op] = rec
	w.bytes += rec.size
	return w.grow(len(v))
}

func (w *salvageWriter) version(_ string, k, v []byte, ver Version, blobs *bolt.Bucket) error {
	w.copiedKeys[ver.Key] = true
	w.keys++
	return w.record(k, v, ver.blob, blobs, func(a *agentBucket) *bolt.Bucket { return a.keys },
		salvageApplied{ver.OpID, appliedRec{at: ver.Stored, kind: edgesync.StateOp, ref: ver.Version, size: ver.Size, hash: ver.Hash, key: ver.Key}})
}

func (w *salvageWriter) event(_ string, k, v []byte, ev Event, blobs *bolt.Bucket) error {
	if w.minSeq == 0 || ev.Seq < w.minSeq {
		w.minSeq = ev.Seq
	}
	w.seqEvents = max(w.seqEvents, ev.Seq)
	w.events++
	w.eventBytes += ev.Size
	return w.record(k, v, ev.blob, blobs, func(a *agentBucket) *bolt.Bucket { return a.events },
		salvageApplied{ev.OpID, appliedRec{at: ev.Stored, kind: edgesync.EventOp, ref: ev.Seq, size: ev.Size, hash: ev.Hash, key: ev.Key}})
}

func (w *salvageWriter) summary(_ string, k, v []byte, _ Summary) error {
	a, err := w.bucket()
	if err != nil {
		return err
	}
	if err := a.summ.Put(k, v); err != nil {
		return w.fail(err)
	}
	w.summaries++
	return w.grow(len(v))
}

func (w *salvageWriter) partial(string, partialRec) { w.rep.Dropped++ }

// endAgent writes the agent's applied entries held or to be rebuilt,
// its sequences and counters.
func (w *salvageWriter) endAgent(string) error {
	for key, recs := range w.keyApplied {
		newest := slices.MaxFunc(recs, func(x, y salvageApplied) int { return cmp.Compare(x.ref, y.ref) })
		named := !w.lostKeys[key].IsZero() // and dropped in applied
		for _, rec := range recs {
			if rec.op == newest.op && !named {
				w.rep.Unmarked++
				continue
			}
			if err := w.putApplied(rec, false); err != nil {
				return err
			}
		}
	}
	// Rebuilt in the order the ops were stored, as they were applied.
	rebuild := slices.SortedFunc(maps.Values(w.proposed), func(x, y salvageApplied) int {
		return cmp.Or(x.at.Compare(y.at), x.op.Compare(y.op))
	})
	for _, rec := range rebuild {
		if err := w.putApplied(rec, true); err != nil {
			return err
		}
	}
	a, err := w.bucket()
	if err != nil {
		return err
	}
	for _, s := range []struct {
		b *bolt.Bucket
		v uint64
	}{{a.events, w.seqEvents}, {a.blobs, w.seqBlobs}, {a.appliedq, w.nextOrder - 1}} {
		if s.v > s.b.Sequence() {
			if err := s.b.SetSequence(s.v); err != nil {
				return w.fail(err)
			}
		}
	}
	for _, st := range []struct {
		name []byte
		v    int64
	}{{statBytes, w.bytes}, {statKeys, w.keys}, {statEvents, w.events}, {statEventBytes, w.eventBytes},
		{statApplied, w.appliedN}, {statSummaries, w.summaries}, {statDedups, w.dedups}, {statEvicted, w.evicted}} {
		if st.v == 0 {
			continue
		}
		if err := a.stats.Put(st.name, u64b(uint64(st.v))); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

// journal copies an intact journal entry as it is, under its key.
func (w *salvageWriter) journal(k, v []byte, _ journalRec) error {
	if w.err != nil {
		return w.err
	}
	jb := w.tx.Bucket(bktJournal)
	if err := jb.Put(k, v); err != nil {
		return w.fail(err)
	}
	w.jseq = max(w.jseq, beU64(k))
	return w.grow(len(v))
}

// journalSeq takes the source journal's sequence.
func (w *salvageWriter) journalSeq(seq uint64) { w.jseq = max(w.jseq, seq) }
