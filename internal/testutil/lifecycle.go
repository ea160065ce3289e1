package testutil

import (
	"errors"
	"testing"
	"time"
)

// CallBound is how long CheckClose and Within wait for a call to return.
const CallBound = 10 * time.Second

// CheckClose checks what the lifecycle convention
// (docs/architecture.md#lifecycle) asks of Close, on a value that has
// started or not: Close succeeds, a second Close succeeds too, and start
// then fails with an error that matches closed (errors.Is), so that
// nothing starts after Close. start is the type's Start or Serve, or what
// it refuses once closed. Each call must return within CallBound.
// Whatever Close left running is found by the package's goleak.
func CheckClose(tb testing.TB, closeFn, start func() error, closed error) {
	tb.Helper()
	if err := Within(tb, "Close", closeFn); err != nil {
		tb.Fatalf("Close: %v", err)
	}
	if err := Within(tb, "a second Close", closeFn); err != nil {
		tb.Fatalf("second Close: %v", err)
	}
	if err := Within(tb, "start after Close", start); !errors.Is(err, closed) {
		tb.Fatalf("start after Close: want an error matching %q, got %v", closed, err)
	}
}

// Within calls f and returns its error, failing tb (naming what f is) if
// f has not returned within CallBound; f is then left running.
func Within(tb testing.TB, what string, f func() error) error {
	tb.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	return Returned(tb, done, CallBound, what)
}
