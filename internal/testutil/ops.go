package testutil

import (
	"encoding/binary"
	"math/rand/v2"
	"sync"
	"time"
)

// OpID returns a deterministic op ID (an edgesync.OpID's 16 bytes) for n;
// higher n are newer.
func OpID(n uint64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], 1_700_000_000_000_000_000+n)
	binary.BigEndian.PutUint64(id[8:], n)
	return id
}

// Payload returns size random bytes determined by seed.
func Payload(seed uint64, size int) []byte {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	b := make([]byte, size)
	_, _ = rand.NewChaCha8(key).Read(b) // never fails
	return b
}

// Clock is a settable clock for tests of retention and ages: pass its Now
// where a component takes a clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock at a fixed time.
func NewClock() *Clock { return &Clock{now: time.Unix(1_800_000_000, 0)} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Add moves the clock on.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
