package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
)

// legacyApplied and legacyPartial build applied and partial records by
// hand, byte by byte in the layout of their encode methods, with kind code
// kind: what a store written by any earlier version holds.
func legacyApplied(r appliedRec, kind byte) []byte {
	b := []byte{recV1}
	b = binary.BigEndian.AppendUint64(b, uint64(r.at.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, r.order)
	b = append(b, kind)
	b = binary.BigEndian.AppendUint64(b, r.ref)
	b = binary.BigEndian.AppendUint64(b, uint64(r.size))
	b = append(b, r.hash[:]...)
	b = binary.AppendUvarint(b, uint64(len(r.key)))
	return append(b, r.key...)
}

func legacyPartial(p partialRec, kind byte) []byte {
	h := p.hdr
	b := append([]byte{recV1}, h.OpID[:]...)
	b = binary.AppendUvarint(b, uint64(len(h.Key)))
	b = append(b, h.Key...)
	b = append(b, kind, byte(h.Priority))
	b = binary.BigEndian.AppendUint64(b, uint64(h.Size))
	b = append(b, h.Hash[:]...)
	b = append(b, boolByte(h.HasBase))
	b = append(b, h.BaseHash[:]...)
	for _, v := range []int64{p.held, int64(p.blob), p.created.UnixNano(), p.updated.UnixNano()} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	b = append(b, boolByte(p.ephemeral))
	b = binary.AppendUvarint(b, uint64(len(p.hashState)))
	return append(b, p.hashState...)
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// TestStoreKindCodes pins the kind byte of applied and partial records:
// state 1, event 2 (not edgesync.OpKind's values), as every store so far
// holds.
func TestStoreKindCodes(t *testing.T) {
	for _, c := range []struct {
		kind edgesync.OpKind
		code byte
	}{{edgesync.StateOp, 1}, {edgesync.EventOp, 2}} {
		r := appliedRec{at: time.Unix(5, 0), order: 9, kind: c.kind, ref: 3, size: 100, hash: [32]byte{7}, key: "k"}
		if got, want := r.encode(), legacyApplied(r, c.code); !bytes.Equal(got, want) {
			t.Errorf("applied record of %s:\n got %x\nwant %x", c.kind, got, want)
		}
		p := partialRec{hdr: PartialHeader{OpID: opID(1), Key: "k", Kind: c.kind, Priority: edgesync.High, Size: 10},
			held: 4, blob: 2, created: time.Unix(6, 0), updated: time.Unix(8, 0), hashState: []byte("hs"), reserved: 4}
		// Today's partial record is the legacy layout followed by the
		// bytes it reserves; a legacy record reserves its declared size.
		if got, want := p.encode(), binary.BigEndian.AppendUint64(legacyPartial(p, c.code), uint64(p.reserved)); !bytes.Equal(got, want) {
			t.Errorf("partial record of %s:\n got %x\nwant %x", c.kind, got, want)
		}
		if got, err := decodePartial(legacyPartial(p, c.code)); err != nil || got.reserved != p.hdr.Size {
			t.Errorf("legacy partial record decodes reserving %d, %v; want its declared size %d", got.reserved, err, p.hdr.Size)
		}
		if got, err := decodePartial(p.encode()); err != nil || got.reserved != p.reserved {
			t.Errorf("partial record decodes reserving %d, %v; want %d", got.reserved, err, p.reserved)
		}
		if got, err := decodeApplied(legacyApplied(r, c.code)); err != nil || got.kind != c.kind {
			t.Errorf("applied record with code %d decodes as %s, %v; want %s", c.code, got.kind, err, c.kind)
		}
		if got, err := decodePartial(legacyPartial(p, c.code)); err != nil || got.hdr.Kind != c.kind {
			t.Errorf("partial record with code %d decodes as %s, %v; want %s", c.code, got.hdr.Kind, err, c.kind)
		}
	}
	for _, bad := range []byte{0, 3} {
		r := appliedRec{key: "k"}
		if _, err := decodeApplied(legacyApplied(r, bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("applied record with kind code %d: %v, want ErrCorrupt", bad, err)
		}
		p := partialRec{hdr: PartialHeader{OpID: opID(1), Key: "k"}}
		if _, err := decodePartial(legacyPartial(p, bad)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("partial record with kind code %d: %v, want ErrCorrupt", bad, err)
		}
	}
}

// TestOldKindCodesReadBack opens a real store whose applied and partial
// records were written with the old kind codes, byte by byte, and checks
// that each op keeps its kind: redeliveries answer as before, and partial
// ops commit as a key's version or as an event.
func TestOldKindCodesReadBack(t *testing.T) {
	cfg := Config{ChunkSize: 4096, InlineMax: 64 << 10}
	s, path := openTest(t, cfg)
	d := payload(1, 3000)
	st, ev := hdrFor(opID(1), edgesync.StateOp, "k", d), hdrFor(opID(2), edgesync.EventOp, "log", d)
	mustApply(t, s, "a", st, d)
	mustApply(t, s, "a", ev, d)
	pst, pev := hdrFor(opID(3), edgesync.StateOp, "k2", d), hdrFor(opID(4), edgesync.EventOp, "log", d)
	for _, h := range []PartialHeader{pst, pev} {
		if _, _, err := s.BeginPartial("a", h); err != nil {
			t.Fatal(err)
		}
		if err := s.WritePartial("a", h.OpID, 0, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	codes := map[edgesync.OpKind]byte{edgesync.StateOp: 1, edgesync.EventOp: 2}
	err = db.Update(func(tx *bolt.Tx) error {
		a := tx.Bucket(bktAgents).Bucket([]byte("a"))
		applied, partials := a.Bucket(bktApplied), a.Bucket(bktPartials)
		for _, h := range []PartialHeader{st, ev} {
			r, err := decodeApplied(applied.Get(h.OpID[:]))
			if err != nil {
				return err
			}
			if err := applied.Put(h.OpID[:], legacyApplied(r, codes[h.Kind])); err != nil {
				return err
			}
		}
		for _, h := range []PartialHeader{pst, pev} {
			p, err := decodePartial(partials.Get(h.OpID[:]))
			if err != nil {
				return err
			}
			if err := partials.Put(h.OpID[:], legacyPartial(p, codes[h.Kind])); err != nil {
				return err
			}
		}
		return nil
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	s, err = Open(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	// Committed before: a repeated commit answers from the applied index.
	if r, err := s.CommitPartial("a", st.OpID); err != nil || !r.Duplicate || r.Kind != edgesync.StateOp || r.Version != 1 {
		t.Errorf("state op again: %+v, %v; want a duplicate state op of version 1", r, err)
	}
	if r, err := s.CommitPartial("a", ev.OpID); err != nil || !r.Duplicate || r.Kind != edgesync.EventOp || r.Seq != 1 {
		t.Errorf("event op again: %+v, %v; want a duplicate event of seq 1", r, err)
	}
	// Partial: the kind decides where the op lands.
	if r, err := s.CommitPartial("a", pst.OpID); err != nil || r.Kind != edgesync.StateOp {
		t.Errorf("partial state op: %+v, %v", r, err)
	}
	if r, err := s.CommitPartial("a", pev.OpID); err != nil || r.Kind != edgesync.EventOp || r.Seq != 2 {
		t.Errorf("partial event op: %+v, %v; want event seq 2", r, err)
	}
	if v, got := mustGet(t, s, "a", "k2"); v.OpID != pst.OpID || !bytes.Equal(got, d) {
		t.Errorf("key k2 holds op %s, want %s", v.OpID, pst.OpID)
	}
	if evs, err := s.Events("a", 0, 0); err != nil || len(evs) != 2 || evs[1].OpID != pev.OpID {
		t.Errorf("events %+v, %v; want two, the second op %s", evs, err, pev.OpID)
	}
}

// TestSmallOpRecordsEncodeInOneAllocation: the records every small event
// writes (its journal entry; its event and applied entry once folded) are
// made in one allocation of the size they need, whatever the lengths of
// the agent's name, the key and the data, and read back as they were.
func TestSmallOpRecordsEncodeInOneAllocation(t *testing.T) {
	at := time.Unix(1_700_000_000, 123)
	for _, n := range []int{0, 1, 40, 127, 128, 1024} {
		key := string(bytes.Repeat([]byte("k"), min(n, 128))) // names and keys are bounded
		data := bytes.Repeat([]byte{7}, n)
		hdr := PartialHeader{OpID: edgesync.OpID{1, 2}, Key: key, Kind: edgesync.EventOp, Priority: edgesync.Normal, Size: int64(n)}
		jr := journalRec{agent: "agent-" + key, seq: 9, hdr: hdr, at: at, data: data}
		ev := Event{OpID: hdr.OpID, Key: key, Size: int64(n), Priority: edgesync.Normal, Stored: at, inline: data}
		ar := appliedRec{at: at, order: 3, kind: edgesync.EventOp, ref: 9, size: int64(n), key: key}
		for what, encode := range map[string]func() []byte{"journal": jr.encode, "event": ev.encode, "applied": ar.encode} {
			if a := testing.AllocsPerRun(20, func() { _ = encode() }); a != 1 {
				t.Errorf("%s record with %d-byte data: %v allocations, want 1", what, n, a)
			}
		}
		if got, err := decodeJournal(binary.BigEndian.AppendUint64(nil, 1), jr.encode()); err != nil ||
			got.agent != jr.agent || got.seq != jr.seq || got.hdr.Key != key || !bytes.Equal(got.data, data) || !got.at.Equal(at) {
			t.Errorf("journal record with %d-byte data read back as %+v, %v", n, got, err)
		}
		if got, err := decodeEvent(9, ev.encode()); err != nil || got.Key != key || !bytes.Equal(got.inline, data) {
			t.Errorf("event record with %d-byte data read back as %+v, %v", n, got, err)
		}
		if got, err := decodeApplied(ar.encode()); err != nil || got != ar {
			t.Errorf("applied record of %d bytes read back as %+v, %v", n, got, err)
		}
	}
}
