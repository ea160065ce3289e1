package core

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestGroupCommitIsolatesFailures: many writers at once, their functions
// grouped into shared transactions; every third fails after writing and
// every seventh panics. Each gets its own answer, a failed one leaves
// nothing written, and every other one's write is there, once, however
// the groups fell.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	s, _ := openTest(t, Config{})
	bkt := []byte("group-test")
	if err := s.update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bkt); return err }); err != nil {
		t.Fatal(err)
	}
	errRefused := errors.New("refused")
	const writers, each = 32, 40
	runs := make([]int, writers*each) // how often each function ran, counted in the transaction
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for j := range each {
				i := w*each + j
				err := s.update(func(tx *bolt.Tx) error {
					b := tx.Bucket(bkt)
					n := 0
					if v := b.Get([]byte(fmt.Sprint("runs", i))); v != nil {
						n = int(beU64(v))
					}
					if err := b.Put([]byte(fmt.Sprint("runs", i)), u64b(uint64(n+1))); err != nil {
						return err
					}
					if err := b.Put([]byte(fmt.Sprint("key", i)), []byte("v")); err != nil {
						return err
					}
					switch {
					case i%7 == 0:
						panic("a damaged page")
					case i%3 == 0:
						return errRefused
					}
					return nil
				})
				switch {
				case i%7 == 0 && !errors.Is(err, ErrCorrupt):
					t.Errorf("write %d panicked: got %v, want ErrCorrupt", i, err)
				case i%7 != 0 && i%3 == 0 && !errors.Is(err, errRefused):
					t.Errorf("write %d failed: got %v, want its own error", i, err)
				case i%7 != 0 && i%3 != 0 && err != nil:
					t.Errorf("write %d: %v (another function's failure leaked into its answer)", i, err)
				}
			}
		})
	}
	wg.Wait()
	err := s.viewTx(func(tx *bolt.Tx) error {
		b := tx.Bucket(bkt)
		for i := range runs {
			if v := b.Get([]byte(fmt.Sprint("runs", i))); v != nil {
				runs[i] = int(beU64(v))
			}
			ok := i%7 != 0 && i%3 != 0
			if got := b.Get([]byte(fmt.Sprint("key", i))) != nil; got != ok {
				t.Errorf("write %d stored = %v, want %v", i, got, ok)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range runs {
		// A committed function's changes are there once: the runs
		// rolled back with a failed neighbour left nothing.
		if ok := i%7 != 0 && i%3 != 0; ok && n != 1 || !ok && n != 0 {
			t.Errorf("write %d committed %d times", i, n)
		}
	}
}
