package testutil

import (
	"errors"
	"sync/atomic"
	"testing"
)

// TestShare: every step runs once, on a worker numbered below workers,
// and a failing step's error is returned with the rest of its worker's
// steps left undone.
func TestShare(t *testing.T) {
	const n, workers = 1000, 4
	var ran [n]atomic.Int32
	if err := Share(n, workers, func(i, w int) error {
		if w < 0 || w >= workers {
			t.Errorf("step %d on worker %d, want 0 to %d", i, w, workers-1)
		}
		ran[i].Add(1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for i := range ran {
		if c := ran[i].Load(); c != 1 {
			t.Fatalf("step %d ran %d times, want once", i, c)
		}
	}
	bad := errors.New("step 10 failed")
	var steps atomic.Int32
	err := Share(n, 1, func(i, _ int) error {
		steps.Add(1)
		if i == 10 {
			return bad
		}
		return nil
	})
	if !errors.Is(err, bad) || steps.Load() != 11 {
		t.Fatalf("one worker failing at step 10: %v after %d steps, want %v after 11", err, steps.Load(), bad)
	}
}
