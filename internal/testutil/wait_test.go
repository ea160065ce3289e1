package testutil

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPollSeesTheCondition(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			n.Add(1)
		}
	}()
	if !Poll(10*time.Second, func() bool { return n.Load() == 3 }) {
		t.Fatalf("Poll gave up with n = %d, want 3", n.Load())
	}
}

func TestPollGivesUpAfterItsBound(t *testing.T) {
	calls := 0
	start := time.Now()
	if Poll(50*time.Millisecond, func() bool { calls++; return false }) {
		t.Fatal("Poll reported a condition that never holds")
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("Poll gave up after %v, before its 50ms bound", took)
	}
	if calls < 2 {
		t.Fatalf("cond checked %d times within 50ms, want it polled", calls)
	}
}

// fatalRecorder is a testing.TB that records Fatalf instead of ending the
// test, to check the message WaitFor fails with.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
}

func TestWaitForNamesWhatItAwaited(t *testing.T) {
	r := &fatalRecorder{TB: t}
	WaitFor(r, 20*time.Millisecond, "the outbox to drain", func() bool { return false })
	if !strings.Contains(r.msg, "the outbox to drain") || !strings.Contains(r.msg, "20ms") {
		t.Fatalf("WaitFor failed with %q, want the bound and what it waited for", r.msg)
	}
	r.msg = ""
	WaitFor(r, time.Second, "something true", func() bool { return true })
	if r.msg != "" {
		t.Fatalf("WaitFor failed on a condition that holds: %q", r.msg)
	}
}
