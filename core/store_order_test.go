package core

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
)

// TestOlderVersionNeverReplacesNewer: versions of a key that arrive out of
// order (the newer committed first) leave the newer one current, and the
// older op is recorded as applied so that its redelivery is acknowledged.
func TestOlderVersionNeverReplacesNewer(t *testing.T) {
	s, _ := openTest(t, Config{})
	older, newer := payload(1, 3000), payload(2, 5000)
	hOld := PartialHeader{OpID: opID(10), Key: "k", Kind: edgesync.StateOp, Size: int64(len(older)), Hash: sha256.Sum256(older)}
	hNew := PartialHeader{OpID: opID(11), Key: "k", Kind: edgesync.StateOp, Size: int64(len(newer)), Hash: sha256.Sum256(newer)}
	mustApply(t, s, "a", hNew, newer)
	res := mustApply(t, s, "a", hOld, older)
	if !res.Stale || res.Duplicate {
		t.Fatalf("older version applied after a newer one: %+v", res)
	}
	v, obj, err := s.Current("a", "k")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(io.NewSectionReader(obj, 0, obj.Size()))
	if v.OpID != hNew.OpID || !bytes.Equal(got, newer) {
		t.Fatalf("current is %s (%d bytes), want the newer version", v.OpID, len(got))
	}
	if ok, err := s.Applied("a", hOld.OpID); !ok || err != nil {
		t.Fatalf("older op not recorded as applied: %v %v", ok, err)
	}
	if res := mustApply(t, s, "a", hOld, older); !res.Duplicate {
		t.Fatalf("redelivery of the older op not a duplicate: %+v", res)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if b := st.ByAgent["a"].Bytes; b != int64(len(newer)) {
		t.Fatalf("stored bytes %d, want %d (the stale data must not count)", b, len(newer))
	}
}
