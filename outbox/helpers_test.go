package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	bolt "go.etcd.io/bbolt"
)

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openT(t testing.TB, path string, opts Options) *Outbox {
	t.Helper()
	o, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := o.Close(); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return o
}

func tempPath(t testing.TB) string { return filepath.Join(t.TempDir(), "outbox.db") }

func payloadOf(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7) + byte(i>>8)
	}
	return b
}

func enq(t testing.TB, o *Outbox, n NewOp) Op {
	t.Helper()
	op, err := o.Enqueue(context.Background(), n)
	if err != nil {
		t.Fatalf("Enqueue(%s/%s p=%s): %v", n.Endpoint, n.Key, n.Priority, err)
	}
	return op
}

// fataler is what helpers need from *testing.T and *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func readAll(t fataler, o *Outbox, id edgesync.OpID) []byte {
	t.Helper()
	p, err := o.OpenPayload(id)
	if err != nil {
		t.Fatalf("OpenPayload(%s): %v", id, err)
	}
	b, err := io.ReadAll(io.NewSectionReader(p, 0, p.Size()))
	if err != nil {
		t.Fatalf("read payload %s: %v", id, err)
	}
	return b
}

func ids(ops []Op) []edgesync.OpID {
	out := make([]edgesync.OpID, len(ops))
	for i, op := range ops {
		out[i] = op.ID
	}
	return out
}

// checkFile verifies the on-disk invariants of a closed outbox file: no
// pending markers after Open swept them, every chunk belongs to an op, and
// every op's chunks add up to its size.
func checkFile(t testing.TB, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("checkFile open: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		l, err := initOrCheck(tx, 0)
		if err != nil {
			return err
		}
		for err := range tx.Check() {
			return err
		}
		ops := tx.Bucket(bucketOps)
		c := tx.Bucket(bucketChunks)
		if err := ops.ForEach(func(k, v []byte) error {
			op, err := decodeOp(edgesync.OpID(k), v)
			if err != nil {
				return err
			}
			return checkChunks(c, &op, l)
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketChunks).ForEach(func(k, _ []byte) error {
			if len(k) != 16 || ops.Get(k) == nil && tx.Bucket(bucketPending).Get(k) == nil && tx.Bucket(bucketQuarantine).Get(k) == nil {
				return fmt.Errorf("orphan chunk bucket %x", k)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatalf("checkFile %s: %v", path, err)
	}
}

var _ = bytes.Equal
