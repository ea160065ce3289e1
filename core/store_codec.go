package core

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
)

// Bucket layout:
//
//	meta                  magic, format
//	agents/<agent>/keys     key → versionRec (with the data of a small op, format 2)
//	agents/<agent>/summ     key → summaryRec
//	agents/<agent>/events   seq(8) → eventRec (with the data of a small op, format 2)
//	agents/<agent>/applied  opID(16) → appliedRec
//	agents/<agent>/appliedq applied order(8) → opID, oldest first, for retention
//	agents/<agent>/partials opID(16) → partialRec
//	agents/<agent>/blobs    blob(8)+offset(8) → chunk of object data
//	agents/<agent>/garbage  blob(8) → size; blobs to delete in later transactions
//	agents/<agent>/stats    counter name → int64
//	journal               arrival order(8) → journalRec: small events not yet
//	                      folded into their agents' buckets (format 3, store_journal.go)
var (
	bktMeta     = []byte("meta")
	bktAgents   = []byte("agents")
	keyMagic    = []byte("magic")
	keyFormat   = []byte("format")
	bktKeys     = []byte("keys")
	bktSumm     = []byte("summ")
	bktEvents   = []byte("events")
	bktApplied  = []byte("applied")
	bktAppliedQ = []byte("appliedq")
	bktPartials = []byte("partials")
	bktBlobs    = []byte("blobs")
	bktGarbage  = []byte("garbage")
	bktStats    = []byte("stats")
	bktJournal  = []byte("journal")

	agentBuckets = [][]byte{bktKeys, bktSumm, bktEvents, bktApplied, bktAppliedQ, bktPartials, bktBlobs, bktGarbage, bktStats}
)

// Counter names in the stats bucket.
var (
	statBytes      = []byte("bytes")      // stored object + event payload bytes
	statReserved   = []byte("reserved")   // bytes partial ops count against the quota (partialRec.reserved)
	statKeys       = []byte("keys")       // keys with a current version
	statEvents     = []byte("events")     // events kept
	statEventBytes = []byte("eventbytes") // event payload bytes kept
	statApplied    = []byte("applied")    // entries in the applied index
	statDedups     = []byte("dedups")     // duplicate ops acknowledged again
	statSummaries  = []byte("summaries")  // summaries kept
	statEvicted    = []byte("evicted")    // events dropped by retention
)

// agentBucket is the set of an agent's buckets inside one transaction.
type agentBucket struct {
	name                                                                   string
	keys, summ, events, applied, appliedq, partials, blobs, garbage, stats *bolt.Bucket // queued is set once freeBlob queued a blob in garbage.
	queued                                                                 bool
}

// seqFill is how full bbolt fills a page it splits in a bucket whose keys
// only grow (its default, 0.5, suits keys in any order).
const seqFill = 0.95

// agentRO returns an agent's buckets for reading, or ErrNotFound.
func agentRO(tx *bolt.Tx, agent string) (*agentBucket, error) {
	b := tx.Bucket(bktAgents).Bucket([]byte(agent))
	if b == nil {
		return nil, fmt.Errorf("agent %q: %w", agent, ErrNotFound)
	}
	return bindAgent(b, agent)
}

// agentRW returns an agent's buckets, creating them on first use.
func agentRW(tx *bolt.Tx, agent string) (*agentBucket, error) {
	b, err := tx.Bucket(bktAgents).CreateBucketIfNotExists([]byte(agent))
	if err != nil {
		return nil, err
	}
	for _, name := range agentBuckets {
		if _, err := b.CreateBucketIfNotExists(name); err != nil {
			return nil, err
		}
	}
	return bindAgent(b, agent)
}

func bindAgent(b *bolt.Bucket, agent string) (*agentBucket, error) {
	a := &agentBucket{
		name: agent,
		keys: b.Bucket(bktKeys), summ: b.Bucket(bktSumm), events: b.Bucket(bktEvents),
		applied: b.Bucket(bktApplied), appliedq: b.Bucket(bktAppliedQ), partials: b.Bucket(bktPartials),
		blobs: b.Bucket(bktBlobs), garbage: b.Bucket(bktGarbage), stats: b.Bucket(bktStats),
	}
	if a.events != nil && a.appliedq != nil {
		// Keys in these two only ever grow: split full pages, not halves
		// (docs/core.md, "The journal").
		a.events.FillPercent, a.appliedq.FillPercent = seqFill, seqFill
	}
	if a.keys == nil || a.summ == nil || a.events == nil || a.applied == nil || a.appliedq == nil ||
		a.partials == nil || a.blobs == nil || a.garbage == nil || a.stats == nil {
		return nil, fmt.Errorf("agent %q: %w: sub-bucket missing", agent, ErrCorrupt)
	}
	return a, nil
}

func (a *agentBucket) stat(name []byte) int64 {
	v := a.stats.Get(name)
	if len(v) != 8 {
		return 0
	}
	return int64(beU64(v))
}

func (a *agentBucket) addStat(name []byte, d int64) error {
	if d == 0 {
		return nil
	}
	return a.stats.Put(name, u64b(uint64(a.stat(name)+d)))
}

func u64b(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func beU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func blobKey(blob uint64, off int64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, blob)
	binary.BigEndian.PutUint64(k[8:], uint64(off))
	return k
}

// Records start with a one-byte record version so that fields can be added.
const recV1 = 1

// The kind codes of applied and partial records. They were written before
// edgesync.OpKind existed and differ from its values; kindCode and
// dec.kind are the one place that maps between them, so stores written by
// any version read the same.
const (
	codeState uint8 = 1
	codeEvent uint8 = 2
)

// kindCode returns the on-disk code of k; the caller has checked k.
func kindCode(k edgesync.OpKind) uint8 {
	if k == edgesync.EventOp {
		return codeEvent
	}
	return codeState
}

type enc []byte

// encSized is an empty record of room for n bytes: the records a small
// op writes (its journal entry, then its event and applied entry when
// folded) are written for every op, and an enc(nil) grows six or seven
// times to hold one with its data.
func encSized(n int) enc { return make(enc, 0, n) }

// maxVarint is the most bytes a length takes (binary.AppendUvarint).
const maxVarint = binary.MaxVarintLen64

func (e enc) u8(v uint8) enc     { return append(e, v) }
func (e enc) u64(v uint64) enc   { return binary.BigEndian.AppendUint64(e, v) }
func (e enc) i64(v int64) enc    { return e.u64(uint64(v)) }
func (e enc) raw(b []byte) enc   { return append(e, b...) }
func (e enc) bytes(b []byte) enc { return enc(binary.AppendUvarint(e, uint64(len(b)))).raw(b) }

// str is bytes of s, without a copy of s made first.
func (e enc) str(s string) enc { return append(binary.AppendUvarint(e, uint64(len(s))), s...) }
func (e enc) bool(v bool) enc {
	if v {
		return e.u8(1)
	}
	return e.u8(0)
}

// dec reads what enc wrote; the first problem sticks in err.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: record truncated at %s", ErrCorrupt, what)
	}
}

func (d *dec) u8() uint8 {
	if len(d.b) < 1 {
		d.fail("u8")
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *dec) u64() uint64 {
	if len(d.b) < 8 {
		d.fail("u64")
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *dec) i64() int64 { return int64(d.u64()) }

func (d *dec) raw(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.fail("bytes")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) bytes() []byte {
	n, k := binary.Uvarint(d.b)
	if k <= 0 || n > uint64(len(d.b)-k) {
		d.fail("length")
		return nil
	}
	d.b = d.b[k:]
	return append([]byte(nil), d.raw(int(n))...)
}

func (d *dec) bool() bool { return d.u8() != 0 }

// kind reads a kind code (see kindCode); a code no version wrote fails.
func (d *dec) kind() edgesync.OpKind {
	switch c := d.u8(); {
	case d.err != nil:
		return 0
	case c == codeState:
		return edgesync.StateOp
	case c == codeEvent:
		return edgesync.EventOp
	default:
		d.err = fmt.Errorf("%w: kind code %d", ErrCorrupt, c)
		return 0
	}
}

func (d *dec) opID() (id edgesync.OpID) { copy(id[:], d.raw(16)); return id }

func (d *dec) hash() (h [32]byte) { copy(h[:], d.raw(32)); return h }

func (d *dec) time() time.Time { return time.Unix(0, d.i64()) }

func (d *dec) version(what string) {
	if v := d.u8(); d.err == nil && v != recV1 {
		d.err = fmt.Errorf("%w: %s record version %d", ErrCorrupt, what, v)
	}
}

func (v Version) encode() []byte {
	return enc(nil).u8(recV1).raw(v.OpID[:]).i64(v.Size).raw(v.Hash[:]).u8(uint8(v.Priority)).
		i64(v.Stored.UnixNano()).u64(v.Version).u64(v.blob).inline(v.inline)
}

// inline appends the data of an op held in its record (format 2), after
// the record's last field of format 1: a record without it keeps its data
// in blob chunks.
func (e enc) inline(data []byte) enc {
	if data == nil {
		return e
	}
	return e.u8(1).bytes(data)
}

// inline reads what enc.inline wrote: nil when the record has no data of
// its own; data of another size than the record's size is corrupt.
func (d *dec) inline(size int64) []byte {
	if d.err != nil || len(d.b) == 0 {
		return nil
	}
	if d.u8() != 1 && d.err == nil {
		d.err = fmt.Errorf("%w: record with unknown trailing field", ErrCorrupt)
	}
	b := d.bytes()
	if d.err == nil && int64(len(b)) != size {
		d.err = fmt.Errorf("%w: %d bytes of data held for %d", ErrCorrupt, len(b), size)
	}
	if d.err != nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...) // off bbolt's pages, and non-nil when empty
}

func decodeVersion(key string, b []byte) (Version, error) {
	d := dec{b: b}
	d.version("version")
	v := Version{Key: key, OpID: d.opID(), Size: d.i64(), Hash: d.hash(), Priority: edgesync.Priority(d.u8()),
		Stored: d.time(), Version: d.u64(), blob: d.u64()}
	v.inline = d.inline(v.Size)
	if d.err != nil {
		return Version{}, fmt.Errorf("key %q: %w", key, d.err)
	}
	return v, nil
}

func (e Event) encode() []byte {
	n := 1 + 16 + maxVarint + len(e.Key) + 8 + 32 + 1 + 8 + 8 + 1 + maxVarint + len(e.inline)
	return encSized(n).u8(recV1).raw(e.OpID[:]).str(e.Key).i64(e.Size).raw(e.Hash[:]).
		u8(uint8(e.Priority)).i64(e.Stored.UnixNano()).u64(e.blob).inline(e.inline)
}

func decodeEvent(seq uint64, b []byte) (Event, error) {
	d := dec{b: b}
	d.version("event")
	e := Event{Seq: seq, OpID: d.opID(), Key: string(d.bytes()), Size: d.i64(), Hash: d.hash(),
		Priority: edgesync.Priority(d.u8()), Stored: d.time(), blob: d.u64()}
	e.inline = d.inline(e.Size)
	if d.err != nil {
		return Event{}, fmt.Errorf("event %d: %w", seq, d.err)
	}
	return e, nil
}

func (s Summary) encode() []byte {
	return enc(nil).u8(recV1).raw(s.OpID[:]).i64(s.Size).raw(s.Hash[:]).i64(s.Time.UnixNano()).
		bool(s.Superseded).bytes(s.Bytes)
}

func decodeSummary(key string, b []byte) (Summary, error) {
	d := dec{b: b}
	d.version("summary")
	s := Summary{Key: key, OpID: d.opID(), Size: d.i64(), Hash: d.hash(), Time: d.time(), Superseded: d.bool(), Bytes: d.bytes()}
	if d.err != nil {
		return Summary{}, fmt.Errorf("summary %q: %w", key, d.err)
	}
	return s, nil
}

// appliedRec is an entry of the applied-op index.
type appliedRec struct {
	at    time.Time
	order uint64 // key in appliedq
	kind  edgesync.OpKind
	ref   uint64 // version (state) or seq (event)
	size  int64
	hash  [32]byte
	key   string
}

func (r appliedRec) encode() []byte {
	n := 1 + 8 + 8 + 1 + 8 + 8 + 32 + maxVarint + len(r.key)
	return encSized(n).u8(recV1).i64(r.at.UnixNano()).u64(r.order).u8(kindCode(r.kind)).u64(r.ref).
		i64(r.size).raw(r.hash[:]).str(r.key)
}

func decodeApplied(b []byte) (appliedRec, error) {
	d := dec{b: b}
	d.version("applied")
	r := appliedRec{at: d.time(), order: d.u64(), kind: d.kind(), ref: d.u64(), size: d.i64(), hash: d.hash(), key: string(d.bytes())}
	return r, d.err
}

// partialRec is an op being received.
type partialRec struct {
	hdr       PartialHeader
	held      int64
	blob      uint64
	created   time.Time
	updated   time.Time
	ephemeral bool   // written by Apply; swept at Open
	hashState []byte // sha256 state over the held bytes
	// reserved is what the partial counts against the agent's quota (in
	// statReserved): its declared size while it is received, only what
	// it holds once the receive has ended (ReleasePartial). Records
	// written before the field existed reserve their declared size.
	reserved int64
}

func (p partialRec) encode() []byte {
	h := p.hdr
	return enc(nil).u8(recV1).raw(h.OpID[:]).bytes([]byte(h.Key)).u8(kindCode(h.Kind)).u8(uint8(h.Priority)).
		i64(h.Size).raw(h.Hash[:]).bool(h.HasBase).raw(h.BaseHash[:]).
		i64(p.held).u64(p.blob).i64(p.created.UnixNano()).i64(p.updated.UnixNano()).bool(p.ephemeral).bytes(p.hashState).
		i64(p.reserved)
}

func decodePartial(b []byte) (partialRec, error) {
	d := dec{b: b}
	d.version("partial")
	var p partialRec
	p.hdr = PartialHeader{OpID: d.opID(), Key: string(d.bytes()), Kind: d.kind(), Priority: edgesync.Priority(d.u8()),
		Size: d.i64(), Hash: d.hash(), HasBase: d.bool(), BaseHash: d.hash()}
	p.held, p.blob, p.created, p.updated, p.ephemeral, p.hashState = d.i64(), d.u64(), d.time(), d.time(), d.bool(), d.bytes()
	p.reserved = p.hdr.Size
	if d.err == nil && len(d.b) > 0 { // a field added in the same record version
		p.reserved = d.i64()
	}
	return p, d.err
}
