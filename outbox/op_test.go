package outbox

import (
	"bytes"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

func TestOpRecordRoundTrip(t *testing.T) {
	op := Op{ID: edgesync.NewIDGenerator().Next(), Endpoint: "core", Key: "sensor/7", Priority: edgesync.Schema,
		Kind: State, Size: 1 << 40, Summary: []byte("sum"), EnqueuedAt: time.Unix(0, 123456789),
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
	op.Kind, op.SummarySent, op.ExpiresAt, op.Summary = State, true, time.Unix(9, 0), nil
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
