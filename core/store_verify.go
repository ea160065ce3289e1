package core

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	edgesync "github.com/edge-sync/edge-sync"
)

// Verify and salvage of a stopped core's store (docs/integrity.md, "The
// core's store"): both read every record of the file with bbolt in
// read-only mode, check it (its encoding, and object data against the
// SHA-256 recorded at commit) and list what is damaged; salvage
// (store_salvage.go) also copies what is intact into a new file.

// ErrLocked means another process (a running core) holds the store's file
// lock; verify and salvage work on a stopped core's store only.
var ErrLocked = errors.New("store is in use by another process")

// Damage is one record, or one run of records, that does not read back
// intact.
type Damage struct {
	Agent string `json:"agent,omitempty"`
	// Bucket is where it sits: keys, events, summ, applied, appliedq,
	// partials, stats, blobs or journal; "agent" for an agent's bucket
	// as a whole, "file" for bbolt's own structure.
	Bucket string `json:"bucket"`
	Key    string `json:"key,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	OpID   string `json:"op,omitempty"`
	Reason string `json:"reason"`
}

// VerifyReport says what VerifyFile read and what it found damaged.
type VerifyReport struct {
	Path      string   `json:"path"`
	Agents    int      `json:"agents"`
	Keys      int      `json:"keys"`
	Events    int      `json:"events"`
	Journal   int      `json:"journal"` // events waiting in the journal
	Summaries int      `json:"summaries"`
	Applied   int      `json:"applied"`  // entries of the applied index
	Partials  int      `json:"partials"` // ops being received
	Bytes     int64    `json:"bytes"`    // object and event data checked
	Damaged   []Damage `json:"damaged"`
}

// OK reports whether nothing was found damaged.
func (r VerifyReport) OK() bool { return len(r.Damaged) == 0 }

func (r *VerifyReport) damage(d Damage) { r.Damaged = append(r.Damaged, d) }

// openRO opens the bbolt file at path read-only (a shared lock: it waits,
// up to timeout, while a core holds the file) and checks that it is a
// core store this code reads.
func openRO(path string, timeout time.Duration) (db *bolt.DB, err error) {
	if err := checkFile(path); err != nil {
		return nil, err
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, r)
			if db != nil {
				_ = db.Close()
			}
			db = nil
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: timeout})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("%w: %s is locked (waited %v): stop the core first", ErrLocked, path, timeout)
	case errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) ||
		errors.Is(err, berrors.ErrVersionMismatch) || errors.Is(err, berrors.ErrInvalidMapping):
		return nil, fmt.Errorf("%w: bbolt cannot read the file's header pages: %v", ErrCorrupt, err)
	case err != nil:
		return nil, err
	}
	if err := db.View(checkMarkers); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// checkMarkers checks the magic and format of a core store.
func checkMarkers(tx *bolt.Tx) error {
	meta := tx.Bucket(bktMeta)
	if meta == nil || string(meta.Get(keyMagic)) != storeMagic {
		return fmt.Errorf("%w: not an edge-sync core store (no meta bucket or magic)", ErrCorrupt)
	}
	f := meta.Get(keyFormat)
	if len(f) != 8 {
		return fmt.Errorf("%w: format marker is %d bytes", ErrCorrupt, len(f))
	}
	if v := beU64(f); v > FormatVersion {
		return fmt.Errorf("%w: file has format %d, this edge-sync reads %d; upgrade edge-sync", ErrVersion, v, FormatVersion)
	}
	if tx.Bucket(bktAgents) == nil {
		return fmt.Errorf("%w: agents bucket missing", ErrCorrupt)
	}
	return nil
}

// VerifyFile reads every record of the store file at path, with the core
// stopped, and lists what is damaged; it changes nothing. timeout bounds
// the wait for the file lock (ErrLocked when a core holds it). An error
// means the file could not be read at all (its header, its markers).
func VerifyFile(path string, timeout time.Duration) (VerifyReport, error) {
	r := VerifyReport{Path: path}
	db, err := openRO(path, timeout)
	if err != nil {
		return r, err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		walkStore(tx, &r, nil)
		return nil
	})
	return r, err
}

// protect runs fn, turning a panic or a memory fault (bbolt on a page it
// cannot read) into an ErrCorrupt error.
func protect(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	return fn()
}

// walkStore reads every record of the store in tx into r; each intact
// record goes to w as well when it is not nil (salvage).
func walkStore(tx *bolt.Tx, r *VerifyReport, w *salvageWriter) {
	// bbolt's own check: pages that are unreachable, doubly used or of
	// the wrong type. It names pages, not records; the walk below names
	// the records they held.
	if err := protect(func() error {
		for cerr := range tx.Check() {
			r.damage(Damage{Bucket: "file", Reason: cerr.Error()})
		}
		return nil
	}); err != nil {
		r.damage(Damage{Bucket: "file", Reason: "bbolt's page check stopped: " + err.Error()})
	}
	var names []string
	if err := protect(func() error {
		return tx.Bucket(bktAgents).ForEach(func(k, v []byte) error {
			if v == nil {
				names = append(names, string(k))
			}
			return nil
		})
	}); err != nil {
		r.damage(Damage{Bucket: "agents", Reason: fmt.Sprintf("agents after %d are unreadable: %v", len(names), err)})
	}
	for _, name := range names {
		r.Agents++
		walkAgent(tx, name, r, w)
	}
	walkJournal(tx, r, w)
}

// walkJournal reads the journal's entries.
func walkJournal(tx *bolt.Tx, r *VerifyReport, w *salvageWriter) {
	jb := tx.Bucket(bktJournal)
	if jb == nil {
		return // format 1 and 2 have none
	}
	seen := map[journalOp]bool{}
	next := map[string]uint64{} // each agent's entries are numbered in order
	var last []byte
	err := protect(func() error {
		if w != nil {
			w.journalSeq(jb.Sequence())
		}
		return jb.ForEach(func(k, v []byte) error {
			last = bytes.Clone(k)
			rec, err := decodeJournal(k, v)
			if err == nil && sha256.Sum256(rec.data) != rec.hdr.Hash {
				err = fmt.Errorf("journal entry %x: %w: data does not match its SHA-256", k, ErrCorrupt)
			}
			if err == nil && seen[journalOp{rec.agent, rec.hdr.OpID}] {
				err = fmt.Errorf("journal entry %x: %w: op stored twice", k, ErrCorrupt)
			}
			if err == nil && rec.seq < next[rec.agent] {
				err = fmt.Errorf("journal entry %x: %w: seq %d after %d", k, ErrCorrupt, rec.seq, next[rec.agent]-1)
			}
			if err != nil {
				d := Damage{Bucket: "journal", Key: fmt.Sprintf("%x", k), Reason: err.Error()}
				d.Agent, d.Seq, d.OpID = journalWho(v)
				r.damage(d)
				return nil
			}
			seen[journalOp{rec.agent, rec.hdr.OpID}] = true
			next[rec.agent] = rec.seq + 1
			r.Journal++
			r.Bytes += rec.hdr.Size
			if w != nil {
				return w.journal(k, v, rec)
			}
			return nil
		})
	})
	if err != nil {
		r.damage(Damage{Bucket: "journal", Reason: fmt.Sprintf("entries after %x are unreadable: %v", last, err)})
	}
}

// journalWho reads the agent, sequence number and op ID at the head of a
// journal entry that does not decode whole, where they read as such.
func journalWho(v []byte) (agent string, seq uint64, op string) {
	d := dec{b: v}
	d.version("journal")
	agent, seq = string(d.bytes()), d.u64()
	d.kind()
	id := d.opID()
	if d.err != nil || checkAgent(agent) != nil {
		return "", 0, ""
	}
	return agent, seq, id.String()
}

// walkAgent reads every record of one agent.
func walkAgent(tx *bolt.Tx, agent string, r *VerifyReport, w *salvageWriter) {
	var b *bolt.Bucket
	if err := protect(func() error { b = tx.Bucket(bktAgents).Bucket([]byte(agent)); return nil }); err != nil || b == nil {
		r.damage(Damage{Agent: agent, Bucket: "agent", Reason: fmt.Sprintf("unreadable: %v", err)})
		return
	}
	sub := map[string]*bolt.Bucket{}
	for _, n := range agentBuckets {
		var sb *bolt.Bucket
		err := protect(func() error { sb = b.Bucket(n); return nil })
		if err != nil || sb == nil {
			r.damage(Damage{Agent: agent, Bucket: string(n), Reason: fmt.Sprintf("bucket missing or unreadable: %v", err)})
			continue
		}
		sub[string(n)] = sb
	}
	// each walks one bucket, naming where a page stopped it.
	each := func(name []byte, fn func(k, v []byte) error) {
		sb := sub[string(name)]
		if sb == nil {
			return
		}
		var last []byte
		err := protect(func() error {
			return sb.ForEach(func(k, v []byte) error { last = k; return fn(k, v) })
		})
		if err != nil {
			d := Damage{Agent: agent, Bucket: string(name), Reason: fmt.Sprintf("no record of it reads: %v", err)}
			if last != nil {
				d.Key, d.Reason = fmt.Sprintf("%x", last), fmt.Sprintf("the records after this key do not read: %v", err)
			}
			r.damage(d)
		}
	}
	seqOf := func(name []byte) uint64 {
		var s uint64
		if sb := sub[string(name)]; sb != nil {
			_ = protect(func() error { s = sb.Sequence(); return nil })
		}
		return s
	}
	if w != nil {
		if err := w.agent(agent, seqOf(bktEvents), seqOf(bktBlobs), seqOf(bktAppliedQ), sub[string(bktStats)]); err != nil {
			r.damage(Damage{Agent: agent, Bucket: "agent", Reason: "not copied: " + err.Error()})
			return
		}
	}
	blobs := sub[string(bktBlobs)]
	each(bktKeys, func(k, v []byte) error {
		ver, err := decodeVersion(string(k), v)
		if err == nil {
			err = checkData(blobs, ver.blob, ver.inline, ver.Size, ver.Hash)
		}
		if err != nil {
			d := Damage{Agent: agent, Bucket: "keys", Key: string(k), Reason: err.Error()}
			if !ver.OpID.IsZero() {
				d.OpID = ver.OpID.String()
			}
			r.damage(d)
			if w != nil {
				w.lostKey(string(k), ver.OpID)
			}
			return nil
		}
		r.Keys++
		r.Bytes += ver.Size
		if w != nil {
			return w.version(agent, k, v, ver, blobs)
		}
		return nil
	})
	each(bktEvents, func(k, v []byte) error {
		var seq uint64
		if len(k) == 8 {
			seq = beU64(k)
		}
		ev, err := decodeEvent(seq, v)
		if err == nil && len(k) != 8 {
			err = fmt.Errorf("%w: event key of %d bytes", ErrCorrupt, len(k))
		}
		if err == nil {
			err = checkData(blobs, ev.blob, ev.inline, ev.Size, ev.Hash)
		}
		if err != nil {
			d := Damage{Agent: agent, Bucket: "events", Seq: seq, Key: ev.Key, Reason: err.Error()}
			if !ev.OpID.IsZero() {
				d.OpID = ev.OpID.String()
			}
			r.damage(d)
			if w != nil {
				w.lostEvent(seq)
			}
			return nil
		}
		r.Events++
		r.Bytes += ev.Size
		if w != nil {
			return w.event(agent, k, v, ev, blobs)
		}
		return nil
	})
	// The applied index after the records it points at: salvage drops
	// the entries of ops whose record it could not copy (store_salvage.go).
	each(bktApplied, func(k, v []byte) error {
		rec, err := decodeApplied(v)
		if err == nil && len(k) != 16 {
			err = fmt.Errorf("%w: op ID of %d bytes", ErrCorrupt, len(k))
		}
		if err != nil {
			r.damage(Damage{Agent: agent, Bucket: "applied", OpID: opString(k), Reason: err.Error()})
			return nil
		}
		r.Applied++
		if w != nil {
			return w.applied(agent, k, rec)
		}
		return nil
	})
	each(bktAppliedQ, func(k, v []byte) error {
		if len(k) != 8 || len(v) != 16 {
			r.damage(Damage{Agent: agent, Bucket: "appliedq", Key: fmt.Sprintf("%x", k),
				Reason: fmt.Sprintf("%v: entry of %d+%d bytes, want 8+16", ErrCorrupt, len(k), len(v))})
		}
		return nil // rebuilt from the applied index by salvage
	})
	each(bktSumm, func(k, v []byte) error {
		sum, err := decodeSummary(string(k), v)
		if err != nil {
			r.damage(Damage{Agent: agent, Bucket: "summ", Key: string(k), Reason: err.Error()})
			return nil
		}
		r.Summaries++
		if w != nil {
			return w.summary(agent, k, v, sum)
		}
		return nil
	})
	each(bktPartials, func(k, v []byte) error {
		p, err := decodePartial(v)
		if err != nil {
			r.damage(Damage{Agent: agent, Bucket: "partials", OpID: opString(k), Reason: err.Error()})
			return nil
		}
		r.Partials++
		if w != nil {
			w.partial(agent, p)
		}
		return nil
	})
	each(bktStats, func(k, v []byte) error {
		if len(v) != 8 {
			r.damage(Damage{Agent: agent, Bucket: "stats", Key: string(k),
				Reason: fmt.Sprintf("%v: counter of %d bytes", ErrCorrupt, len(v))})
		}
		return nil // salvage counts them again from what it copied
	})
	if w != nil {
		if err := w.endAgent(agent); err != nil {
			r.damage(Damage{Agent: agent, Bucket: "agent", Reason: "not finished: " + err.Error()})
		}
	}
}

// checkData reads an op's data, held in its record (inline) or in chunks
// of blob, and checks it against the SHA-256 recorded at commit.
func checkData(blobs *bolt.Bucket, blob uint64, inline []byte, size int64, sum [32]byte) error {
	if blob == 0 || inline != nil {
		if int64(len(inline)) != size {
			return fmt.Errorf("%w: %d bytes of data held for %d", ErrCorrupt, len(inline), size)
		}
		if sha256.Sum256(inline) != sum {
			return fmt.Errorf("%w: data does not match its SHA-256", ErrCorrupt)
		}
		return nil
	}
	if blobs == nil {
		return fmt.Errorf("%w: blobs bucket unreadable", ErrCorrupt)
	}
	h := sha256.New()
	err := protect(func() error {
		return eachChunk(blobs, blob, func(_, v []byte) error { h.Write(v); return nil })
	})
	if err == nil {
		var got [32]byte
		if h.Sum(got[:0]); got != sum {
			err = fmt.Errorf("%w: data hashes to %x, stored as %x", ErrCorrupt, got[:8], sum[:8])
		}
	}
	return err
}

// eachChunk calls fn with each chunk of blob in order, failing on a gap.
func eachChunk(blobs *bolt.Bucket, blob uint64, fn func(k, v []byte) error) error {
	prefix := blobKey(blob, 0)[:8]
	var off int64
	c := blobs.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != 16 || int64(beU64(k[8:])) != off {
			return fmt.Errorf("%w: blob %d: chunk key %x where offset %d was due", ErrCorrupt, blob, k, off)
		}
		if err := fn(k, v); err != nil {
			return err
		}
		off += int64(len(v))
	}
	return nil
}

// opString formats a 16-byte op ID as OpID.String does, or in hex.
func opString(k []byte) string {
	if len(k) != 16 {
		return fmt.Sprintf("%x", k)
	}
	var id edgesync.OpID
	copy(id[:], k)
	return id.String()
}
