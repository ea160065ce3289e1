package backoff

import (
	"context"
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

// TestBackoffWaitEndsWithContext: Wait counts an attempt and returns when
// ctx ends, not after its delay (an hour here).
func TestBackoffWaitEndsWithContext(t *testing.T) {
	b := New(time.Hour, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { b.Wait(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return within 10 s of its context ending")
	}
	if b.Attempts() != 1 {
		t.Errorf("Attempts = %d after one Wait, want 1", b.Attempts())
	}
}
