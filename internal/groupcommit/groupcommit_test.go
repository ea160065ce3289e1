package groupcommit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

var bkt = []byte("b")

// openDB opens a real bbolt file with one bucket.
func openDB(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "g.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bkt); return err }); err != nil {
		t.Fatal(err)
	}
	return db
}

// counted wraps db.Update: it counts the transactions and the most
// functions one held (each function calls note), and turns a panic into
// errPanicked, as the stores' guarded runners do.
type counted struct {
	db    *bolt.DB
	txs   atomic.Int64
	mu    sync.Mutex
	cur   int   // functions run in the transaction now running
	most  int   // the most in one transaction
	sizes []int // functions run in each transaction, in order
}

var errPanicked = errors.New("panicked")

func (c *counted) run(fn func(*bolt.Tx) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errPanicked, r)
		}
	}()
	c.txs.Add(1)
	defer func() {
		c.mu.Lock()
		c.sizes = append(c.sizes, c.cur)
		c.mu.Unlock()
	}()
	return c.db.Update(func(tx *bolt.Tx) error {
		c.mu.Lock()
		c.cur = 0
		c.mu.Unlock()
		return fn(tx)
	})
}

func (c *counted) note() {
	c.mu.Lock()
	c.cur++
	c.most = max(c.most, c.cur)
	c.mu.Unlock()
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// queued waits until n callers wait in g's queue behind the running
// transaction.
func queued(t *testing.T, g *Group[*bolt.Tx], n int) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, fmt.Sprintf("%d callers queued", n), func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return len(g.queue) == n
	})
}

// hold starts a transaction in g that runs until release is closed, so
// that the callers after it queue; first is its caller's answer.
func hold(g *Group[*bolt.Tx]) (release chan struct{}, first chan error) {
	release, entered := make(chan struct{}), make(chan struct{})
	first = make(chan error, 1)
	go func() {
		first <- g.Do(func(*bolt.Tx) error {
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered
	return release, first
}

// TestIsolatesFailures: ten callers queue behind a running transaction
// and so share the next one; some of their functions fail after writing,
// one panics. Each caller gets its own answer, a failed function leaves
// nothing written, and every other one's write is there once.
func TestIsolatesFailures(t *testing.T) {
	db := openDB(t)
	c := &counted{db: db}
	g := New(c.run, 0, 0)
	release, first := hold(g)
	errRefused := errors.New("refused")
	const n, panics = 10, 7
	refused := map[int]bool{3: true, 9: true}
	ok := func(i int) bool { return i != panics && !refused[i] }
	answers := make([]chan error, n)
	for i := range n {
		answers[i] = make(chan error, 1)
		go func() {
			answers[i] <- g.Do(func(tx *bolt.Tx) error {
				c.note()
				b := tx.Bucket(bkt)
				runs := uint64(0)
				if v := b.Get(fmt.Append(nil, "runs", i)); v != nil {
					runs = binary.BigEndian.Uint64(v)
				}
				if err := b.Put(fmt.Append(nil, "runs", i), u64(runs+1)); err != nil {
					return err
				}
				switch {
				case i == panics:
					panic("a damaged page")
				case refused[i]:
					return fmt.Errorf("op %d: %w", i, errRefused)
				}
				return nil
			})
		}()
		queued(t, g, i+1) // in this order
	}
	close(release)
	if err := testutil.Returned(t, first, 10*time.Second, "the first caller"); err != nil {
		t.Fatalf("the first caller: %v", err)
	}
	for i := range n {
		err := testutil.Returned(t, answers[i], 10*time.Second, fmt.Sprintf("caller %d", i))
		switch {
		case i == panics && !errors.Is(err, errPanicked):
			t.Errorf("caller %d panicked: got %v, want the runner's error", i, err)
		case refused[i] && !errors.Is(err, errRefused):
			t.Errorf("caller %d failed: got %v, want its own error", i, err)
		case ok(i) && err != nil:
			t.Errorf("caller %d: %v (another function's failure leaked into its answer)", i, err)
		}
	}
	err := db.View(func(tx *bolt.Tx) error {
		for i := range n {
			runs := uint64(0)
			if v := tx.Bucket(bkt).Get(fmt.Append(nil, "runs", i)); v != nil {
				runs = binary.BigEndian.Uint64(v)
			}
			// A committed function's changes are there once: the runs
			// rolled back with a failed neighbour left nothing.
			if ok(i) && runs != 1 || !ok(i) && runs != 0 {
				t.Errorf("caller %d: its write committed %d times", i, runs)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The leader's transaction, then one of the queued callers' functions
	// up to the first that failed (0 to 3).
	if len(c.sizes) < 2 || c.sizes[1] != 4 {
		t.Errorf("functions run in each transaction: %v; want the queued callers' first to run 4 (0 to 3, which failed) together", c.sizes)
	}
}

// TestBounds: a transaction holds at most maxFuncs functions and, but for
// a lone function over it, maxBytes of their sizes.
func TestBounds(t *testing.T) {
	for _, c := range []struct {
		name               string
		maxFuncs, maxBytes int
		size               int
		want               int // most functions in one transaction
	}{
		{"funcs", 4, 0, 0, 4},
		{"bytes", 0, 3000, 1000, 3},
		{"lone over bytes", 0, 500, 1000, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			cnt := &counted{db: openDB(t)}
			g := New(cnt.run, c.maxFuncs, c.maxBytes)
			var wg sync.WaitGroup
			for i := range 200 {
				wg.Go(func() {
					err := g.DoSized(c.size, func(tx *bolt.Tx) error {
						cnt.note()
						return tx.Bucket(bkt).Put(fmt.Append(nil, i), []byte("v"))
					})
					if err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if cnt.most > c.want {
				t.Errorf("a transaction held %d functions, want at most %d", cnt.most, c.want)
			}
			if c.want > 1 && cnt.most < 2 {
				t.Errorf("%d transactions for 200 functions, none shared", cnt.txs.Load())
			}
		})
	}
}

// TestCommitFailure: when the commit itself fails, every function of the
// transaction gets that error, not success.
func TestCommitFailure(t *testing.T) {
	db := openDB(t)
	errDisk := errors.New("disk failed")
	var fail atomic.Bool
	run := func(fn func(*bolt.Tx) error) error {
		err := db.Update(fn)
		if err == nil && fail.Load() {
			return errDisk // as a failed fsync would, after fn ran
		}
		return err
	}
	g := New(run, 0, 0)
	fail.Store(true)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			err := g.Do(func(tx *bolt.Tx) error { return tx.Bucket(bkt).Put(fmt.Append(nil, i), []byte("v")) })
			if !errors.Is(err, errDisk) {
				t.Errorf("function %d: %v, want the commit's error", i, err)
			}
		})
	}
	wg.Wait()
}

// TestDoAll: one caller's functions queue together and run in one
// transaction, in their order; a failing one is isolated and the others
// commit once, still in order; the bound on functions splits them across
// transactions without losing any or their order.
func TestDoAll(t *testing.T) {
	for _, c := range []struct {
		name     string
		maxFuncs int
		// functions run in each transaction after the first: all, up to
		// the failing one (4), which rolls back; 0 to 3 again, 4 alone,
		// then the rest
		want []int
	}{
		{"one transaction", 0, []int{5, 4, 1, 5}},
		{"split by the bound", 3, []int{3, 2, 1, 1, 1, 3, 1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			db := openDB(t)
			cnt := &counted{db: db}
			g := New(cnt.run, c.maxFuncs, 0)
			release, first := hold(g)
			errRefused := errors.New("refused")
			const n, bad = 10, 4
			fns := make([]func(*bolt.Tx) error, n)
			for i := range fns {
				fns[i] = func(tx *bolt.Tx) error {
					cnt.note()
					b := tx.Bucket(bkt)
					if i == bad {
						return errRefused
					}
					// Each appends its index under the next sequence: the
					// order in which they committed.
					seq, err := b.NextSequence()
					if err != nil {
						return err
					}
					return b.Put(u64(seq), u64(uint64(i)))
				}
			}
			var errs []error
			done := make(chan error, 1)
			go func() {
				errs = g.DoAll(nil, fns)
				done <- nil
			}()
			queued(t, g, n)
			close(release)
			if err := testutil.Returned(t, first, 10*time.Second, "the first caller"); err != nil {
				t.Fatal(err)
			}
			if err := testutil.Returned(t, done, 10*time.Second, "DoAll"); err != nil {
				t.Fatal(err)
			}
			for i, err := range errs {
				if i == bad && !errors.Is(err, errRefused) || i != bad && err != nil {
					t.Errorf("function %d: %v", i, err)
				}
			}
			var order []uint64
			err := db.View(func(tx *bolt.Tx) error {
				return tx.Bucket(bkt).ForEach(func(_, v []byte) error {
					order = append(order, binary.BigEndian.Uint64(v))
					return nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(order) != "[0 1 2 3 5 6 7 8 9]" {
				t.Errorf("committed in the order %v, want each once, in the functions' order", order)
			}
			cnt.mu.Lock()
			sizes := fmt.Sprint(cnt.sizes[1:])
			cnt.mu.Unlock()
			if sizes != fmt.Sprint(c.want) {
				t.Errorf("functions run in each transaction: %s, want %v", sizes, c.want)
			}
		})
	}
}
