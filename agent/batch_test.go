package agent

import (
	"testing"
	"time"
)

// TestBatcherDecisions walks the batch-interval policy through its cases
// (docs/design.md#batch-interval) with explicit times.
func TestBatcherDecisions(t *testing.T) {
	const chunk = 256 << 10
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	waiting := func(ops int, bytes int64) func(int64) (int, int64) {
		return func(int64) (int, int64) { return ops, bytes }
	}
	var b batcher
	steps := []struct {
		name     string
		at       time.Duration // after t0
		interval time.Duration
		ops      int
		bytes    int64
		want     bool
		holds    int64 // the counter after the step
	}{
		{"no batch yet: a small op goes at once", 0, 30 * time.Second, 1, 100, true, 0},
		// (the batch drains at t0+1s: see below)
		{"within the interval a small op waits", 5 * time.Second, 30 * time.Second, 1, 100, false, 1},
		{"small ops that together fill a chunk go", 6 * time.Second, 30 * time.Second, 40, chunk, true, 1},
		{"one op of more than a chunk goes", 7 * time.Second, 30 * time.Second, 1, 4 * chunk, true, 1},
		{"nothing waiting is no hold", 8 * time.Second, 30 * time.Second, 0, 0, false, 1},
		{"interval 0 is best effort", 9 * time.Second, 0, 1, 100, true, 1},
		{"a shorter interval that has passed lets it go", 9 * time.Second, 5 * time.Second, 1, 100, true, 1},
		{"the interval after the last batch has passed", 31 * time.Second, 30 * time.Second, 1, 100, true, 1},
	}
	b.drained(t0.Add(time.Second), true)
	for _, st := range steps {
		if st.at == 0 {
			// Before any batch: the zero batcher.
			var fresh batcher
			if got := fresh.goNow(t0, st.interval, chunk, waiting(st.ops, st.bytes)); got != st.want {
				t.Errorf("%s: goNow = %v, want %v", st.name, got, st.want)
			}
			continue
		}
		if got := b.goNow(t0.Add(st.at), st.interval, chunk, waiting(st.ops, st.bytes)); got != st.want {
			t.Errorf("%s: goNow = %v, want %v", st.name, got, st.want)
		}
		if got := b.holds.Load(); got != st.holds {
			t.Errorf("%s: holds = %d, want %d", st.name, got, st.holds)
		}
	}
	if due := b.due(30 * time.Second); !due.Equal(t0.Add(31 * time.Second)) {
		t.Errorf("due = %v, want the interval after the last batch (%v)", due, t0.Add(31*time.Second))
	}

	// A batch that sent nothing (it found no ops, or only ops held for
	// their summary) does not restart the interval.
	b.drained(t0.Add(40*time.Second), false)
	if !b.goNow(t0.Add(41*time.Second), 30*time.Second, chunk, waiting(1, 100)) {
		t.Error("an empty batch restarted the interval: a small op 40 s after the last batch that sent data waits")
	}
	b.drained(t0.Add(50*time.Second), true)
	if b.goNow(t0.Add(51*time.Second), 30*time.Second, chunk, waiting(1, 100)) {
		t.Error("a batch that sent data did not restart the interval")
	}
	if n := b.batches.Load(); n != 2 {
		t.Errorf("batches = %d, want 2 (those that sent data)", n)
	}
}
