package core

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/wire"
)

// The memory the core holds for frames in flight is bounded per
// connection and in all (ServerConfig.MaxFrameMemory and
// MaxConnFrameMemory). What counts is memory that follows what agents
// send: an op stream's frame buffer as its body arrives (wire.Reader with
// the connection's budget), a chunk's decoded bytes, the lane's received
// bytes (lane.Config.Budget) and lane data held for an op ahead of its
// turn. A declared length costs nothing until its bytes come. A
// reservation that does not fit fails at once with wire.ErrBusy (the op
// is refused busy and the agent sends it again later) rather than wait:
// a stream waiting for memory while holding some would wait on streams
// that wait on it, and the flow control of the QUIC connection would not
// let the bytes that could free it through.

// The frame memory bounds' defaults are the config file's
// (config.DefaultCore's limits).
const (
	// MinConnFrameMemory is the least a connection may be given: one
	// maximal DATA frame and its decoded chunk, so that any op can come
	// (config.MinConnFrameMemory, a round figure above it, is what a
	// config file may set).
	MinConnFrameMemory = 2*wire.MaxFrameSize + 64<<10
)

// memBudget is a bound on bytes held: a connection's, drawing on the
// core's as well. It implements wire.Budget and so lane.Config.Budget.
type memBudget struct {
	what   string // "connection" or "core", for errors
	limit  int64
	parent *memBudget
	// refused counts reservations that did not fit (the server's stats).
	refused *atomic.Int64

	mu   sync.Mutex
	used int64
	peak int64
}

var _ wire.Budget = (*memBudget)(nil)

func newMemBudget(what string, limit int64, parent *memBudget, refused *atomic.Int64) *memBudget {
	return &memBudget{what: what, limit: limit, parent: parent, refused: refused}
}

// Reserve takes n bytes of this budget and its parent's, or none of either
// (wire.ErrBusy).
func (b *memBudget) Reserve(n int) error {
	if err := b.reserve(n); err != nil {
		b.refused.Add(1)
		return err
	}
	return nil
}

// tryReserve reserves n bytes as Reserve does, but a reservation that
// does not fit counts as no refusal: it is for memory a stream can do
// without (its read-ahead buffer, server_read.go).
func (b *memBudget) tryReserve(n int) bool { return b.reserve(n) == nil }

func (b *memBudget) reserve(n int) error {
	if err := b.take(int64(n)); err != nil {
		return err
	}
	if b.parent != nil {
		if err := b.parent.take(int64(n)); err != nil {
			b.give(int64(n))
			return err
		}
	}
	return nil
}

// Release gives back n bytes reserved before.
func (b *memBudget) Release(n int) {
	b.give(int64(n))
	if b.parent != nil {
		b.parent.give(int64(n))
	}
}

func (b *memBudget) take(n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return fmt.Errorf("%w: frames in flight hold %s of the %s's %s (the core's limits.%s)", wire.ErrBusy,
			units.FormatBytes(b.used), b.what, units.FormatBytes(b.limit), b.setting())
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return nil
}

// setting names the core's config setting of the bound, for errors.
func (b *memBudget) setting() string {
	if b.parent != nil {
		return "max_frame_memory_per_connection"
	}
	return "max_frame_memory"
}

func (b *memBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// inUse returns the bytes reserved now and the most ever reserved at once.
func (b *memBudget) inUse() (used, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak
}

// growBuffer returns buf with room for n bytes, its growth reserved in
// b; the caller releases cap of the result when it drops it.
func growBuffer(b wire.Budget, buf []byte, n int) ([]byte, error) {
	if cap(buf) >= n {
		return buf[:0], nil
	}
	if err := b.Reserve(n - cap(buf)); err != nil {
		return buf[:0], err
	}
	return make([]byte, 0, n), nil
}
