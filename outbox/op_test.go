package outbox

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	bolt "go.etcd.io/bbolt"
)

func TestOpRecordRoundTrip(t *testing.T) {
	op := Op{ID: edgesync.NewIDGenerator().Next(), Endpoint: "core", Key: "sensor/7", Priority: edgesync.Schema,
		Kind: edgesync.StateOp, Size: 1 << 40, Summary: []byte("sum"), EnqueuedAt: time.Unix(0, 123456789),
		ExpiresAt: time.Unix(0, 987654321), SummarySent: true}
	got, err := decodeOp(op.ID, encodeOp(&op))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != op.ID || got.Endpoint != op.Endpoint || got.Key != op.Key || got.Priority != op.Priority ||
		got.Kind != op.Kind || got.Size != op.Size || !bytes.Equal(got.Summary, op.Summary) ||
		!got.EnqueuedAt.Equal(op.EnqueuedAt) || !got.ExpiresAt.Equal(op.ExpiresAt) || !got.SummarySent {
		t.Fatalf("round trip: got %+v, want %+v", got, op)
	}
	rec := encodeOp(&op)
	for n := range len(rec) {
		if _, err := decodeOp(op.ID, rec[:n]); err == nil {
			t.Fatalf("truncated record of %d of %d bytes decoded", n, len(rec))
		}
	}
}

// FuzzDecodeOp feeds arbitrary bytes to the op record decoder: it must not
// panic, and whatever it accepts must survive encode and decode unchanged
// (byte equality is too strict: uvarint lengths have non-minimal forms).
func FuzzDecodeOp(f *testing.F) {
	op := Op{Endpoint: "core", Key: "k", Priority: edgesync.High, Size: 70000, Summary: []byte("s"), EnqueuedAt: time.Unix(5, 0)}
	f.Add(encodeOp(&op))
	op.Kind, op.SummarySent, op.ExpiresAt, op.Summary = edgesync.StateOp, true, time.Unix(9, 0), nil
	f.Add(encodeOp(&op))
	op.ID, op.Hash = edgesync.OpID{1}, sha256.Sum256([]byte("payload")) // record version 2
	f.Add(encodeOp(&op))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeOp(edgesync.OpID{1}, b)
		if err != nil {
			return
		}
		re := encodeOp(&got)
		again, err := decodeOp(got.ID, re)
		if err != nil {
			t.Fatalf("re-encoded record %x does not decode: %v", re, err)
		}
		if re2 := encodeOp(&again); !bytes.Equal(re, re2) {
			t.Fatalf("record changed on a round trip:\n%x\n%x", re, re2)
		}
	})
}

// legacyRecord builds an ops record by hand, byte by byte as the layout
// comment of encodeOp describes it, with kind code kind: what a file
// written by any earlier version holds.
func legacyRecord(prio edgesync.Priority, kind byte, size int64, enqueued time.Time, endpoint, key string) []byte {
	b := []byte{1, byte(prio), kind, 0}
	b = binary.BigEndian.AppendUint64(b, uint64(size))
	b = binary.BigEndian.AppendUint64(b, uint64(enqueued.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, 0) // never expires
	for _, f := range []string{endpoint, key, ""} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// TestOpRecordKindCodes pins the kind byte of the ops record: event 0,
// state 1 (not edgesync.OpKind's values), as every file so far holds.
func TestOpRecordKindCodes(t *testing.T) {
	for _, c := range []struct {
		kind edgesync.OpKind
		code byte
	}{{edgesync.EventOp, 0}, {edgesync.StateOp, 1}} {
		op := Op{Endpoint: "core", Key: "k", Priority: edgesync.High, Kind: c.kind, EnqueuedAt: time.Unix(7, 0)}
		rec := encodeOp(&op)
		if rec[2] != c.code {
			t.Errorf("%s is written as %d, want %d", c.kind, rec[2], c.code)
		}
		if !bytes.Equal(rec, legacyRecord(op.Priority, c.code, 0, op.EnqueuedAt, "core", "k")) {
			t.Errorf("%s record %x differs from the hand-built one", c.kind, rec)
		}
	}
	for _, bad := range []byte{2, 255} {
		rec := legacyRecord(edgesync.High, bad, 0, time.Unix(7, 0), "core", "k")
		if _, err := decodeOp(edgesync.OpID{1}, rec); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "kind") {
			t.Errorf("kind code %d decodes with %v, want ErrCorrupt naming the kind", bad, err)
		}
	}
}

// TestOldKindCodesReadBack opens a real file whose ops records were
// written with the old kind codes, byte by byte, and reads each op back
// with its kind; the state ops still supersede by key.
func TestOldKindCodesReadBack(t *testing.T) {
	path := tempPath(t)
	o := openT(t, path, Options{})
	ev := enq(t, o, NewOp{Endpoint: "e", Key: "log", Payload: strings.NewReader("event")})
	st := enq(t, o, NewOp{Endpoint: "e", Key: "temp", Kind: edgesync.StateOp, Payload: strings.NewReader("21")})
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	editDB(t, path, func(tx *bolt.Tx) error {
		ops := tx.Bucket(bucketOps)
		if err := ops.Put(ev.ID[:], legacyRecord(edgesync.Normal, 0, 5, ev.EnqueuedAt, "e", "log")); err != nil {
			return err
		}
		return ops.Put(st.ID[:], legacyRecord(edgesync.Normal, 1, 2, st.EnqueuedAt, "e", "temp"))
	})
	o = openT(t, path, Options{})
	for _, w := range []struct {
		id   edgesync.OpID
		kind edgesync.OpKind
		data string
	}{{ev.ID, edgesync.EventOp, "event"}, {st.ID, edgesync.StateOp, "21"}} {
		got, err := o.Get(w.id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != w.kind {
			t.Errorf("op %s reads back as %s, want %s", w.id, got.Kind, w.kind)
		}
		if d := readAll(t, o, w.id); string(d) != w.data {
			t.Errorf("op %s payload %q, want %q", w.id, d, w.data)
		}
	}
	// The old state op is indexed as one: a newer version of its key
	// supersedes it.
	enq(t, o, NewOp{Endpoint: "e", Key: "temp", Kind: edgesync.StateOp, Payload: strings.NewReader("22")})
	if _, err := o.Get(st.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("old state op after a newer version: %v, want ErrNotFound", err)
	}
	if _, err := o.Get(ev.ID); err != nil {
		t.Errorf("old event op: %v", err)
	}
}
