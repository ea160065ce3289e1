package outbox

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	bolt "go.etcd.io/bbolt"
)

// fill enqueues n ops of 40 KiB random bytes (seeds seed, seed+1, ...)
// for endpoint core under keys k/0, k/1, ..., each changed by mod if not
// nil, and returns the ops and their payloads.
func fill(t *testing.T, o *Outbox, n int, seed uint64, mod func(i int, n *NewOp)) ([]Op, [][]byte) {
	t.Helper()
	var ops []Op
	var data [][]byte
	for i := range n {
		d := testutil.RandomBytes(seed+uint64(i), 40<<10)
		op := NewOp{Endpoint: "core", Key: fmt.Sprint("k/", i), Payload: bytes.NewReader(d)}
		if mod != nil {
			mod(i, &op)
		}
		ops = append(ops, enq(t, o, op))
		data = append(data, d)
	}
	return ops, data
}

// damagedFile makes an outbox of n ops of 40 KiB random bytes, flips 512
// bytes in the middle of op victim's payload on disk, and returns the path,
// the ops and their payloads.
func damagedFile(t *testing.T, n, victim int) (string, []Op, [][]byte) {
	t.Helper()
	path := tempPath(t)
	o := openT(t, path, Options{})
	ops, data := fill(t, o, n, 0, func(_ int, n *NewOp) { n.Priority = edgesync.Normal })
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.Damage(t, path, data[victim], 20<<10-256, 512)
	return path, ops, data
}

func TestEnqueueHashesWhatTheProducerGave(t *testing.T) {
	o := openT(t, tempPath(t), Options{chunkSize: 1000, stageChunks: 2})
	for _, size := range []int{0, 1, 999, 1000, 4500, 9001} {
		d := testutil.RandomBytes(uint64(size), size)
		op := enq(t, o, NewOp{Endpoint: "e", Payload: bytes.NewReader(d)})
		if op.Hash != sha256.Sum256(d) {
			t.Errorf("%d bytes: op hash %x, want the SHA-256 of the payload", size, op.Hash[:8])
		}
		if got, _ := o.Get(op.ID); got.Hash != op.Hash {
			t.Errorf("%d bytes: stored hash %x differs from Enqueue's %x", size, got.Hash[:8], op.Hash[:8])
		}
	}
}

// TestDamagedPayloadIsQuarantined flips 512 bytes of one op's payload in
// the file: reading it fails with ErrDamaged and quarantines it (reported,
// counted, kept on disk), and every other op reads back intact.
func TestDamagedPayloadIsQuarantined(t *testing.T) {
	path, ops, data := damagedFile(t, 10, 4)
	o := openT(t, path, Options{})
	victim := ops[4]
	// Bytes before the damaged block still read: each read checks only
	// the blocks it returns.
	p, err := o.OpenPayload(victim.ID)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if n, err := p.ReadAt(buf, 0); n != len(buf) || err != nil || !bytes.Equal(buf, data[4][:1000]) {
		t.Fatalf("reading intact block 0 of the damaged op: n=%d err=%v", n, err)
	}
	n, err := p.ReadAt(buf, 20<<10-500)
	if n != 0 || !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("reading the damaged block: n=%d err=%v, want 0 and ErrDamaged naming the checksum", n, err)
	}
	if _, err := p.ReadAt(buf, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("reading a quarantined op: %v, want ErrNotFound", err)
	}
	select {
	case d := <-o.Drops():
		if d.ID != victim.ID || d.Reason != ReasonDamaged || d.Key != "k/4" {
			t.Fatalf("drop %+v, want op %s, key k/4, reason damaged", d, victim.ID)
		}
	default:
		t.Fatal("no drop reported for the quarantined op")
	}
	st, _ := o.Stats()
	if st.Total.Ops != 9 || st.Quarantined != (Count{1, 40 << 10}) || st.Drops[ReasonDamaged] != 1 {
		t.Fatalf("stats: %d ops, quarantined %+v, damaged drops %d; want 9, {1 40960}, 1", st.Total.Ops, st.Quarantined, st.Drops[ReasonDamaged])
	}
	leased, _ := o.Lease("core", 100)
	if len(leased) != 9 {
		t.Fatalf("leased %d ops, want the 9 intact ones", len(leased))
	}
	for i, op := range ops {
		if i == 4 {
			continue
		}
		if got := readAll(t, o, op.ID); !bytes.Equal(got, data[i]) {
			t.Fatalf("op %d reads back differently", i)
		}
	}
	q, err := o.Quarantined()
	if err != nil || len(q) != 1 || q[0].ID != victim.ID || q[0].Key != "k/4" || q[0].Size != 40<<10 ||
		!strings.Contains(q[0].Reason, "checksum") || q[0].At.IsZero() {
		t.Fatalf("Quarantined() = %+v, %v", q, err)
	}
	// Quarantine outlives a restart, with the damaged bytes kept.
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)
	o = openT(t, path, Options{})
	if st, _ := o.Stats(); st.Total.Ops != 9 || st.Quarantined.Ops != 1 {
		t.Fatalf("after reopening: %d ops, %d quarantined; want 9, 1", st.Total.Ops, st.Quarantined.Ops)
	}
	if n := countChunkBuckets(t, o); n != 10 {
		t.Fatalf("%d chunk buckets, want 10 (the quarantined op's payload is kept)", n)
	}
	purged, err := o.PurgeQuarantined()
	if err != nil || purged != (Count{1, 40 << 10}) {
		t.Fatalf("PurgeQuarantined = %+v, %v", purged, err)
	}
	if st, _ := o.Stats(); st.Quarantined != (Count{}) {
		t.Fatalf("quarantined after purge: %+v", st.Quarantined)
	}
	if n := countChunkBuckets(t, o); n != 9 {
		t.Fatalf("%d chunk buckets after purge, want 9", n)
	}
}

func countChunkBuckets(t *testing.T, o *Outbox) int {
	t.Helper()
	n := 0
	_ = o.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChunks).ForEach(func([]byte, []byte) error { n++; return nil })
	})
	return n
}

// TestEveryBlockIsChecked damages one byte at a time in each block of a
// three-chunk payload (through bbolt, so only the value changes): a read
// that returns the damaged block fails, one that does not succeeds.
func TestEveryBlockIsChecked(t *testing.T) {
	const chunk = 40 << 10 // blocks of 16 KiB: 16+16+8 per chunk
	data := testutil.RandomBytes(7, 3*chunk-100)
	for _, at := range []int{0, 16<<10 - 1, 16 << 10, 39 << 10, chunk, 2*chunk + 16<<10, len(data) - 1} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			path := tempPath(t)
			o := openT(t, path, Options{chunkSize: chunk})
			op := enq(t, o, NewOp{Endpoint: "e", Payload: bytes.NewReader(data)})
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			editDB(t, path, func(tx *bolt.Tx) error {
				cb := tx.Bucket(bucketChunks).Bucket(op.ID[:]).Bucket(chunkKey(uint32(at / chunk)))
				d := bytes.Clone(cb.Get(keyData))
				d[at%chunk] ^= 1
				return cb.Put(keyData, d)
			})
			o = openT(t, path, Options{})
			p, err := o.OpenPayload(op.ID)
			if err != nil {
				t.Fatal(err)
			}
			block := at / (16 << 10) * (16 << 10)
			if at%chunk >= 32<<10 {
				block = at - at%chunk + 32<<10
			}
			if block > 0 {
				// Everything before the damaged block reads.
				buf := make([]byte, block)
				if n, err := p.ReadAt(buf, 0); n != block || err != nil || !bytes.Equal(buf, data[:block]) {
					t.Fatalf("reading [0, %d) before the damage: n=%d err=%v", block, n, err)
				}
			}
			if n, err := p.ReadAt(make([]byte, 1), int64(at)); n != 0 || !errors.Is(err, ErrDamaged) {
				t.Fatalf("reading the flipped byte at %d: n=%d err=%v, want ErrDamaged", at, n, err)
			}
		})
	}
}

// TestDamagedRecordIsQuarantinedAtOpen flips a bit of one op's record (the
// live copy, through bbolt: the file holds stale copies of the page too):
// Open quarantines that op, whose record fails its checksum, and serves
// the others.
func TestDamagedRecordIsQuarantinedAtOpen(t *testing.T) {
	path := tempPath(t)
	o := openT(t, path, Options{})
	var ops []Op
	for i := range 5 {
		ops = append(ops, enq(t, o, NewOp{Endpoint: "core", Key: fmt.Sprintf("sensors/record-%d-of-five", i),
			Payload: strings.NewReader(fmt.Sprint("reading ", i))}))
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	editDB(t, path, func(tx *bolt.Tx) error {
		rec := bytes.Clone(tx.Bucket(bucketOps).Get(ops[2].ID[:]))
		rec[len(rec)-12] ^= 0x10 // in the key
		return tx.Bucket(bucketOps).Put(ops[2].ID[:], rec)
	})
	o = openT(t, path, Options{})
	st, _ := o.Stats()
	if st.Total.Ops != 4 || st.Quarantined.Ops != 1 {
		t.Fatalf("after a damaged record: %d ops, %d quarantined; want 4, 1", st.Total.Ops, st.Quarantined.Ops)
	}
	if _, err := o.Get(ops[2].ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the op with the damaged record is still served: %v", err)
	}
	q, _ := o.Quarantined()
	if len(q) != 1 || q[0].ID != ops[2].ID || !strings.Contains(q[0].Reason, "record fails its checksum") {
		t.Fatalf("quarantine: %+v", q)
	}
	for i, op := range ops {
		if i != 2 {
			if got := readAll(t, o, op.ID); string(got) != fmt.Sprint("reading ", i) {
				t.Fatalf("op %d reads %q", i, got)
			}
		}
	}
}

// TestRecordChecksumCoversEveryBit flips each bit of a version 2 record
// and of its op ID: every flip fails the record's checksum.
func TestRecordChecksumCoversEveryBit(t *testing.T) {
	op := Op{ID: edgesync.OpID{1, 2, 3}, Endpoint: "core", Key: "k", Priority: edgesync.High, Kind: edgesync.StateOp,
		Size: 77, Hash: sha256.Sum256([]byte("x")), Summary: []byte("s"), EnqueuedAt: time.Unix(5, 0)}
	rec := encodeOp(&op)
	if rec[0] != opRecordV2 {
		t.Fatalf("an op with a hash is written as record version %d", rec[0])
	}
	got, err := decodeOp(op.ID, rec)
	if err != nil || got.Hash != op.Hash || got.Key != op.Key || got.Size != op.Size {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for bit := range 8 * len(rec) {
		bad := bytes.Clone(rec)
		bad[bit/8] ^= 1 << (bit % 8)
		if _, err := decodeOp(op.ID, bad); err == nil {
			t.Fatalf("record with bit %d flipped decodes", bit)
		} else if bit >= 8 && !errors.Is(err, ErrDamaged) {
			t.Fatalf("record with bit %d flipped: %v, want ErrDamaged", bit, err)
		}
	}
	for bit := range 128 {
		id := op.ID
		id[bit/8] ^= 1 << (bit % 8)
		if _, err := decodeOp(id, rec); !errors.Is(err, ErrDamaged) {
			t.Fatalf("record under an ID with bit %d flipped: %v, want ErrDamaged", bit, err)
		}
	}
	for n := range len(rec) {
		if _, err := decodeOp(op.ID, rec[:n]); err == nil {
			t.Fatalf("record truncated to %d bytes decodes", n)
		}
	}
}

// TestVerifyQuarantinesWhatIsDamaged damages one op's payload and another
// op's checksums; Verify finds both, quarantines them, reports their keys
// and leaves the rest flowing.
func TestVerifyQuarantinesWhatIsDamaged(t *testing.T) {
	path, ops, data := damagedFile(t, 8, 2)
	editDB(t, path, func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketChunks).Bucket(ops[5].ID[:]).Bucket(chunkKey(0))
		return cb.Put(keySums, cb.Get(keySums)[:8])
	})
	// Checksums of the wrong length are seen at Open already.
	o := openT(t, path, Options{})
	r, err := o.Verify(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 6 || r.Bytes != 6*40<<10 || r.Unchecked != 0 || len(r.Damaged) != 1 || r.Damaged[0].ID != ops[2].ID ||
		r.Damaged[0].Key != "k/2" || len(r.Quarantined) != 2 || r.OK() {
		t.Fatalf("verify report %+v", r)
	}
	if r.Quarantined[0].ID != ops[2].ID || r.Quarantined[1].ID != ops[5].ID {
		t.Fatalf("quarantined %v and %v, want ops 2 and 5", r.Quarantined[0].ID, r.Quarantined[1].ID)
	}
	for i, op := range ops {
		if i != 2 && i != 5 {
			if got := readAll(t, o, op.ID); !bytes.Equal(got, data[i]) {
				t.Fatalf("op %d differs", i)
			}
		}
	}
	// A second run finds nothing new; the quarantine stays until purged.
	r, err = o.Verify(context.Background())
	if err != nil || len(r.Damaged) != 0 || len(r.Quarantined) != 2 || r.OK() {
		t.Fatalf("second verify: %+v, %v", r, err)
	}
	if _, err := o.PurgeQuarantined(ops[2].ID); err != nil {
		t.Fatal(err)
	}
	if r, _ := o.Verify(context.Background()); len(r.Quarantined) != 1 {
		t.Fatalf("after purging one: %+v", r)
	}
	if _, err := o.PurgeQuarantined(); err != nil {
		t.Fatal(err)
	}
	if r, _ := o.Verify(context.Background()); !r.OK() || r.Ops != 6 {
		t.Fatalf("after purging all: %+v", r)
	}
}

// TestVerifyFileChangesNothing checks a damaged file offline: it reports
// the damaged op and leaves the file byte for byte as it was; while an
// outbox has the file open it fails with ErrLocked.
func TestVerifyFileChangesNothing(t *testing.T) {
	path, ops, _ := damagedFile(t, 6, 3)
	before, _ := os.ReadFile(path)
	r, err := VerifyFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 5 || len(r.Damaged) != 1 || r.Damaged[0].ID != ops[3].ID || r.Damaged[0].Key != "k/3" ||
		!strings.Contains(r.Damaged[0].Reason, "checksum") || len(r.Quarantined) != 0 || r.OK() {
		t.Fatalf("report %+v", r)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("VerifyFile changed the file")
	}
	o := openT(t, path, Options{})
	if _, err := VerifyFile(path, Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("VerifyFile of a file in use: %v, want ErrLocked", err)
	}
	if _, err := o.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	r, err = VerifyFile(path, Options{})
	if err != nil || len(r.Damaged) != 0 || len(r.Quarantined) != 1 || r.Quarantined[0].Key != "k/3" {
		t.Fatalf("offline report after an online verify: %+v, %v", r, err)
	}
}

// TestPageHeaderDamage destroys the header of the bbolt page that holds
// the start of one op's chunk. bbolt cannot read that page: Open refuses
// the file with ErrCorrupt and changes nothing; VerifyFile names the op
// and still checks the others.
func TestPageHeaderDamage(t *testing.T) {
	path := tempPath(t)
	o := openT(t, path, Options{})
	ops, data := fill(t, o, 6, 100, nil)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.DamagePageHeader(t, path, data[2][:64], 4096)
	openFails(t, path, ErrCorrupt, "damaged page")
	r, err := VerifyFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != 5 || len(r.Damaged) != 1 || r.Damaged[0].ID != ops[2].ID || r.Damaged[0].Key != "k/2" {
		t.Fatalf("report %+v", r)
	}
}

// TestFormatV1Fixture opens a file written by the outbox of format
// version 1 (testdata/outbox-v1.README): Open upgrades it in place, its
// ops read back as they were put (without checks: they have no hash),
// new ops get checksums, and an older build would now refuse the file.
func TestFormatV1Fixture(t *testing.T) {
	path := tempPath(t)
	gz, err := os.Open("testdata/outbox-v1.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer gz.Close()
	zr, err := gzip.NewReader(gz)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	pattern := func(seed byte, n int) []byte { return payloadOf(seed, n) } // the fixture's payloads
	want := map[string][]byte{"log/1": pattern(1, 100), "cfg/site": pattern(2, 5000), "big": pattern(3, 1<<20+300_000), "": nil}

	// Offline, before the upgrade: every op is read and none has checks.
	r, err := VerifyFile(path, Options{})
	if err != nil || r.Ops != 4 || r.Unchecked != 4 || !r.OK() || r.Bytes != 100+5000+1<<20+300_000 {
		t.Fatalf("VerifyFile of the v1 file: %+v, %v", r, err)
	}
	o := openT(t, path, Options{})
	var all []Op
	for _, p := range edgesync.Priorities() {
		ops, _ := o.List("", p, 0)
		all = append(all, ops...)
	}
	if len(all) != 4 {
		t.Fatalf("%d ops in the v1 file, want 4", len(all))
	}
	for _, op := range all {
		if op.Hash != [32]byte{} {
			t.Errorf("v1 op %s has a hash", op.Key)
		}
		if got := readAll(t, o, op.ID); !bytes.Equal(got, want[op.Key]) {
			t.Errorf("v1 op %q reads %d bytes that differ from the %d put", op.Key, len(got), len(want[op.Key]))
		}
		if op.Key == "cfg/site" && (!op.SummarySent || string(op.Summary) != "site config" || op.Kind != edgesync.StateOp || op.Priority != edgesync.Schema) {
			t.Errorf("cfg/site reads back as %+v", op)
		}
	}
	fresh := enq(t, o, NewOp{Endpoint: "core", Key: "new", Payload: strings.NewReader("after the upgrade")})
	if fresh.Hash == [32]byte{} {
		t.Fatal("an op enqueued after the upgrade has no hash")
	}
	// A v1 op keeps its v1 record when it is rewritten.
	var log Op
	for _, op := range all {
		if op.Key == "log/1" {
			log = op
		}
	}
	if err := o.MarkSummarySent(log.ID); err != nil {
		t.Fatal(err)
	}
	if r, err := o.Verify(context.Background()); err != nil || r.Ops != 5 || r.Unchecked != 4 || !r.OK() {
		t.Fatalf("Verify after the upgrade: %+v, %v", r, err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path)
	editDB(t, path, func(tx *bolt.Tx) error {
		if v := binary.BigEndian.Uint32(tx.Bucket(bucketMeta).Get(keyVersion)); v != 2 {
			return fmt.Errorf("format version %d after the upgrade, want 2", v)
		}
		if rec := tx.Bucket(bucketOps).Get(log.ID[:]); rec[0] != opRecordV1 {
			return fmt.Errorf("the v1 op's record is version %d after MarkSummarySent", rec[0])
		}
		return nil
	})
	o = openT(t, path, Options{})
	if st, _ := o.Stats(); st.Total.Ops != 5 {
		t.Fatalf("%d ops after reopening, want 5", st.Total.Ops)
	}
}

// TestFormatV1ByHand builds a version 1 file with bbolt, byte by byte as
// format 1 wrote it (no checksums, no quarantine bucket), and opens it.
func TestFormatV1ByHand(t *testing.T) {
	path := tempPath(t)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := edgesync.NewIDGenerator().Next()
	payload := []byte("a version 1 payload")
	err = db.Update(func(tx *bolt.Tx) error {
		meta, _ := tx.CreateBucket(bucketMeta)
		meta.Put(keyFormat, []byte(formatMagic))
		meta.Put(keyVersion, binary.BigEndian.AppendUint32(nil, 1))
		meta.Put(keyChunkSize, binary.BigEndian.AppendUint32(nil, 1<<20))
		ops, _ := tx.CreateBucket(bucketOps)
		tx.CreateBucket(bucketPending)
		chunks, _ := tx.CreateBucket(bucketChunks)
		ob, _ := chunks.CreateBucket(id[:])
		cb, _ := ob.CreateBucket(chunkKey(0))
		if err := cb.Put(keyData, payload); err != nil {
			return err
		}
		return ops.Put(id[:], legacyRecord(edgesync.High, 1, int64(len(payload)), time.Unix(9, 0), "core", "k"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	o := openT(t, path, Options{})
	op, err := o.Get(id)
	if err != nil || op.Kind != edgesync.StateOp || op.Hash != [32]byte{} {
		t.Fatalf("v1 op: %+v, %v", op, err)
	}
	if got := readAll(t, o, id); !bytes.Equal(got, payload) {
		t.Fatalf("v1 payload %q", got)
	}
	if st, _ := o.Stats(); st.Quarantined.Ops != 0 {
		t.Fatalf("v1 op quarantined: %+v", st.Quarantined)
	}
}

// TestSalvage copies what reads back intact out of a file Open refuses (a
// page header bbolt cannot read) and out of one with a damaged payload:
// every intact op arrives in the new file with its ID, metadata and hash,
// the damaged ones are named, and the old file is not changed.
func TestSalvage(t *testing.T) {
	path := tempPath(t)
	o := openT(t, path, Options{})
	ops, data := fill(t, o, 8, 200, func(i int, n *NewOp) {
		n.Priority, n.Summary, n.TTL = edgesync.Priority(i%6), []byte("s"), time.Hour
		if i%2 == 1 {
			n.Kind = edgesync.StateOp
		}
	})
	if err := o.MarkSummarySent(ops[6].ID); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.DamagePageHeader(t, path, data[2][:64], 4096)
	testutil.Damage(t, path, data[5], 30000, 100)
	file, _ := os.ReadFile(path)
	openFails(t, path, ErrCorrupt, "damaged page")

	dst := tempPath(t)
	r, err := Salvage(context.Background(), path, dst, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Copied != 6 || r.Bytes != 6*40<<10 || len(r.Lost) != 2 || r.Lost[0].Key != "k/2" || r.Lost[1].Key != "k/5" ||
		!strings.Contains(r.Lost[1].Reason, "checksum") || r.Unlisted {
		t.Fatalf("salvage report %+v", r)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, file) {
		t.Fatal("Salvage changed the damaged file")
	}
	if _, err := Salvage(context.Background(), path, dst, Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("salvage onto an existing file: %v, want ErrInvalid", err)
	}
	checkFile(t, dst)
	n := openT(t, dst, Options{})
	for i, op := range ops {
		got, err := n.Get(op.ID)
		if i == 2 || i == 5 {
			if err == nil {
				t.Errorf("damaged op %d was copied", i)
			}
			continue
		}
		if err != nil {
			t.Fatalf("op %d (%s) not copied: %v", i, op.ID, err)
		}
		if got.Key != op.Key || got.Kind != op.Kind || got.Priority != op.Priority || got.Hash != op.Hash ||
			!got.EnqueuedAt.Equal(op.EnqueuedAt) || !got.ExpiresAt.Equal(op.ExpiresAt) || string(got.Summary) != "s" ||
			got.SummarySent != (i == 6) {
			t.Errorf("op %d copied as %+v, was %+v", i, got, op)
		}
		if b := readAll(t, n, op.ID); !bytes.Equal(b, data[i]) {
			t.Errorf("op %d's payload differs after salvage", i)
		}
	}
	// New IDs come after the salvaged ones.
	if fresh := enq(t, n, NewOp{Endpoint: "core", Payload: strings.NewReader("x")}); fresh.ID.Compare(ops[7].ID) <= 0 {
		t.Errorf("a new ID %s is not after the salvaged %s", fresh.ID, ops[7].ID)
	}
}
