package lifecycle

import "sync"

// MarkClosed sets *closed under mu and reports whether this call set it:
// the first Close goes on to stop what its value started, a later one
// returns at once, so that Close is idempotent. The flag stays the
// value's own: its other methods read it under the same mu.
func MarkClosed(mu sync.Locker, closed *bool) (first bool) {
	mu.Lock()
	defer mu.Unlock()
	first = !*closed
	*closed = true
	return first
}
