package backoff

import (
	"testing"
	"time"
)

func TestBackoffGrowsCapsAndResets(t *testing.T) {
	b := New(100*time.Millisecond, 2*time.Second)
	b.Jitter = 0
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000}
	for i, w := range want {
		if got := b.Next(); got != w*time.Millisecond {
			t.Fatalf("attempt %d: got %v, want %v", i, got, w*time.Millisecond)
		}
	}
	if b.Attempts() != len(want) {
		t.Errorf("Attempts = %d", b.Attempts())
	}
	b.Reset()
	if got := b.Next(); got != 100*time.Millisecond {
		t.Errorf("after Reset: %v", got)
	}
}

func TestBackoffJitterStaysInBand(t *testing.T) {
	b := New(time.Second, time.Second)
	lo, hi := time.Duration(1<<62), time.Duration(0)
	for range 1000 {
		d := b.Next()
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 800*time.Millisecond || hi > 1200*time.Millisecond {
		t.Fatalf("jitter out of ±20%%: [%v, %v]", lo, hi)
	}
	if hi-lo < 200*time.Millisecond {
		t.Fatalf("no spread: [%v, %v]", lo, hi)
	}
}
