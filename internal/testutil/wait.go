package testutil

import (
	"testing"
	"time"
)

// PollInterval is how often WaitFor and Poll check their condition.
const PollInterval = 10 * time.Millisecond

// Poll checks cond at once and then every PollInterval until it holds or d
// has passed, and reports whether it held. A caller that gets false must
// fail with a message that says what it waited for.
func Poll(d time.Duration, cond func() bool) bool {
	return PollEvery(d, PollInterval, cond)
}

// PollEvery is Poll checking every interval, for a condition that is
// costly to check (a scan of the core's store).
func PollEvery(d, interval time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return true
			}
		case <-deadline.C:
			return cond() // one last look: the deadline may beat the tick
		}
	}
}

// WaitFor waits (see Poll) until cond holds, and fails tb with "timed out
// after d waiting for what" when it has not within d.
func WaitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	if !Poll(d, cond) {
		tb.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// Returned waits up to d for the result of something that runs in its own
// goroutine (a Serve, a command) and returns it; it fails tb with "timed
// out after d waiting for what" when nothing came within d.
func Returned(tb testing.TB, done <-chan error, d time.Duration, what string) error {
	tb.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		tb.Fatalf("timed out after %v waiting for %s", d, what)
		return nil
	}
}
