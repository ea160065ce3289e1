package outbox

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Damage describes an op whose stored bytes failed their checks. Endpoint,
// Key, Priority and Size come from the op's record; when the record itself
// is damaged they are read from it without trust, or empty.
type Damage struct {
	ID       edgesync.OpID     `json:"id"`
	Endpoint string            `json:"endpoint"`
	Key      string            `json:"key"`
	Priority edgesync.Priority `json:"priority"`
	Size     int64             `json:"size"`
	Reason   string            `json:"reason"`
	// At is when the op was quarantined; zero for damage an offline
	// VerifyFile found (it changes nothing).
	At time.Time `json:"at,omitzero"`
}

// reasonOf is the reason a quarantine records for err: its message
// without the ErrDamaged suffix every such error carries.
func reasonOf(err error) string { return strings.TrimSuffix(err.Error(), ": "+ErrDamaged.Error()) }

func damageOf(op *Op, reason string) Damage {
	return Damage{ID: op.ID, Endpoint: op.Endpoint, Key: op.Key, Priority: op.Priority, Size: op.Size, Reason: reason}
}

// Quarantine record layout, the value under quarantine/<id>:
//
//	[0] version 1  [1:9] quarantined at, unix ns
//	then uvarint-length-prefixed reason and the op record as it was found
//	(possibly damaged) under ops/<id>.
const quarantineV1 = 1

func encodeQuarantine(at time.Time, reason string, rec []byte) []byte {
	b := make([]byte, 9, 9+2*binary.MaxVarintLen32+len(reason)+len(rec))
	b[0] = quarantineV1
	binary.BigEndian.PutUint64(b[1:], uint64(at.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(reason)))
	b = append(b, reason...)
	b = binary.AppendUvarint(b, uint64(len(rec)))
	return append(b, rec...)
}

// decodeQuarantine reads a quarantine record. The op record inside it is
// decoded without trusting its checksum, for the names it carries.
func decodeQuarantine(id edgesync.OpID, b []byte) (Damage, error) {
	d := Damage{ID: id}
	if len(b) < 9 || b[0] != quarantineV1 {
		return d, fmt.Errorf("quarantine record of %s is bad: %w", id, ErrCorrupt)
	}
	d.At = time.Unix(0, int64(binary.BigEndian.Uint64(b[1:])))
	rest := b[9:]
	var fields [2][]byte
	for i := range fields {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(len(rest)-k) {
			return d, fmt.Errorf("quarantine record of %s is bad: %w", id, ErrCorrupt)
		}
		fields[i], rest = rest[k:k+int(n)], rest[k+int(n):]
	}
	d.Reason = string(fields[0])
	if op, ok := untrustedOp(id, fields[1]); ok {
		d.Endpoint, d.Key, d.Priority, d.Size = op.Endpoint, op.Key, op.Priority, op.Size
	}
	return d, nil
}

// untrustedOp decodes a record whose checksum failed, for a report: the
// names in it may be wrong, and ok is false if it does not parse at all.
func untrustedOp(id edgesync.OpID, rec []byte) (Op, bool) {
	op, err := decodeOp(id, rec)
	if err == nil {
		return op, true
	}
	if len(rec) > 4 && rec[0] == opRecordV2 {
		// Decode it as if sealed, to read the fields.
		resealed := binary.BigEndian.AppendUint32(slices.Clone(rec[:len(rec)-4]), recordSum(id, rec[:len(rec)-4]))
		if op, err := decodeOp(id, resealed); err == nil {
			return op, true
		}
	}
	return Op{ID: id}, false
}

// moveToQuarantine moves op id's record from ops to quarantine with the
// reason; its chunks stay. Moving an op that is gone is a no-op, so the
// function is idempotent (group commit may run it twice).
func moveToQuarantine(tx *bolt.Tx, id edgesync.OpID, at time.Time, reason string) error {
	ops := tx.Bucket(bucketOps)
	rec := ops.Get(id[:])
	if rec == nil {
		return nil
	}
	q := encodeQuarantine(at, reason, rec)
	if err := tx.Bucket(bucketQuarantine).Put(id[:], q); err != nil {
		return err
	}
	return ops.Delete(id[:])
}

// quarantine takes op id out of the send queue for good because its bytes
// failed a check (why says which): its record moves to the quarantine
// bucket, its payload stays on disk for forensics, it is reported on Drops
// as ReasonDamaged, counted in Stats.Quarantined and logged once. An op
// that is gone or being removed already is left alone.
func (o *Outbox) quarantine(id edgesync.OpID, why error) {
	o.mu.Lock()
	e := o.idx.ops[id]
	if e == nil || e.busy {
		o.mu.Unlock()
		return
	}
	o.idx.setBusy(e, true)
	op := e.op
	o.mu.Unlock()
	now := o.opts.Now()
	reason := reasonOf(why)
	err := o.commit.Do(func(tx *bolt.Tx) error { return moveToQuarantine(tx, id, now, reason) })
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.idx.undo([]*entry{e})
		o.log.Error("damaged op not quarantined; reads of it keep failing", "op", id.String(), "key", op.Key, "reason", reason, "error", err)
		return
	}
	o.idx.remove(id)
	o.quar.add(op.Size)
	o.log.Error("op quarantined: its stored bytes are damaged and it will not be sent; run `edge-sync ctl transport.outbox.verify`",
		"op", id.String(), "endpoint", op.Endpoint, "key", op.Key, "size", op.Size, "reason", reason)
	o.emitLocked(dropOf(&op, ReasonDamaged))
}

// Quarantined lists the ops in quarantine, oldest ID first.
func (o *Outbox) Quarantined() ([]Damage, error) {
	if err := o.begin(); err != nil {
		return nil, fmt.Errorf("quarantined: %w", err)
	}
	defer o.inflight.Done()
	out, err := o.quarantinedLocked()
	if err != nil {
		return nil, fmt.Errorf("quarantined: %w", err)
	}
	return out, nil
}

// listQuarantine reads every quarantine record; a version 1 file has none.
func listQuarantine(tx *bolt.Tx) ([]Damage, error) {
	b := tx.Bucket(bucketQuarantine)
	if b == nil {
		return nil, nil
	}
	var out []Damage
	err := b.ForEach(func(k, v []byte) error {
		if len(k) != 16 {
			return fmt.Errorf("quarantine key %x is %d bytes: %w", k, len(k), ErrCorrupt)
		}
		d, err := decodeQuarantine(edgesync.OpID(k), v)
		if err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// PurgeQuarantined deletes quarantined ops (their records and payloads)
// for good, once an operator has looked at them; no ids means all. It
// returns what it deleted; IDs not in quarantine are ignored.
func (o *Outbox) PurgeQuarantined(ids ...edgesync.OpID) (Count, error) {
	if err := o.begin(); err != nil {
		return Count{}, fmt.Errorf("purge quarantined: %w", err)
	}
	defer o.inflight.Done()
	var purged Count
	// Not through group commit: the chunks of a quarantined op may sit on
	// pages bbolt cannot read, and a panic must not leave the group
	// stuck. guard turns it into ErrCorrupt; bbolt rolls the tx back.
	err := guard("purge quarantined", func() error {
		return o.db.Update(func(tx *bolt.Tx) error {
			purged = Count{}
			q := tx.Bucket(bucketQuarantine)
			list := ids
			if len(list) == 0 {
				_ = q.ForEach(func(k, _ []byte) error {
					if len(k) == 16 {
						list = append(list, edgesync.OpID(k))
					}
					return nil
				})
			}
			for _, id := range list {
				v := q.Get(id[:])
				if v == nil {
					continue
				}
				d, _ := decodeQuarantine(id, v)
				if err := q.Delete(id[:]); err != nil {
					return err
				}
				if err := deleteChunks(tx, id); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
					return err
				}
				purged.add(d.Size)
			}
			return nil
		})
	})
	if err != nil {
		return Count{}, fmt.Errorf("purge quarantined: %w", mapWriteErr(err))
	}
	o.mu.Lock()
	o.quar.Ops = max(0, o.quar.Ops-purged.Ops)
	o.quar.Bytes = max(0, o.quar.Bytes-purged.Bytes)
	o.mu.Unlock()
	return purged, nil
}
