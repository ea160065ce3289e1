package outbox

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// A write transaction that panics (bbolt on a damaged page does) must
// come back as ErrCorrupt to its caller, and the outbox must go on
// committing: the group commit's runner turns panics into errors
// (internal/groupcommit's caveat). With a plain db.Update the panic
// escaped the group's leader, and every caller queued behind it, and
// every later one, waited for ever: a put through the control API, whose
// HTTP server recovers a handler's panic, stalled the outbox so.
func TestCommitPanicIsAnError(t *testing.T) {
	o, err := Open(filepath.Join(t.TempDir(), "outbox.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close() })
	panicked := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				panicked <- fmt.Errorf("the panic escaped the commit: %v", r)
			}
		}()
		panicked <- o.commit.Do(func(*bolt.Tx) error { panic("a damaged page") })
	}()
	if err := testutil.Returned(t, panicked, 10*time.Second, "a commit whose function panics"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a commit whose function panics: got %v, want ErrCorrupt", err)
	}
	next := make(chan error, 1)
	go func() {
		next <- o.commit.Do(func(tx *bolt.Tx) error { return tx.Bucket(bucketPending).Put([]byte("k"), nil) })
	}()
	if err := testutil.Returned(t, next, 10*time.Second, "the next commit"); err != nil {
		t.Fatalf("the next commit: %v", err)
	}
}
