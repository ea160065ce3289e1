package outbox

import (
	"bytes"
	"context"
	"errors"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
)

// TestEnqueueWithNewID: an op may be given its ID before Enqueue (NewID);
// it is stored under it, survives a reopen, and a second op with the same
// ID is refused, naming the ID, without touching the first.
func TestEnqueueWithNewID(t *testing.T) {
	path := tempPath(t)
	o := openT(t, path, Options{})
	id := o.NewID()
	data := payloadOf(1, 3<<20)
	op := enq(t, o, NewOp{Endpoint: "core", Priority: edgesync.High, Payload: bytes.NewReader(data), ID: id})
	if op.ID != id {
		t.Fatalf("op stored as %s, want the given %s", op.ID, id)
	}
	_, err := o.Enqueue(context.Background(), NewOp{Endpoint: "core", Priority: edgesync.High, Payload: bytes.NewReader([]byte("other")), ID: id})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("second enqueue with the same id: %v, want ErrInvalid", err)
	}
	if later := enq(t, o, NewOp{Endpoint: "core", Priority: edgesync.High, Payload: bytes.NewReader([]byte("x"))}); later.ID.Compare(id) <= 0 {
		t.Fatalf("a fresh id %s does not sort after the given %s", later.ID, id)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o = openT(t, path, Options{})
	if got := readAll(t, o, id); !bytes.Equal(got, data) {
		t.Fatalf("after reopen the op holds %d bytes, want the %d given", len(got), len(data))
	}
}
