package jsstore

import (
	"fmt"
	"sync"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
)

// Partial ops up to InlineMax are held in this core's memory until their
// commit writes them in one message: a small op costs JetStream no write
// before it is committed. A core that dies loses them, and the agent,
// which has no acknowledgement, sends them again from the start; another
// core answers "nothing held" for them. Their total is bounded by
// MemoryBytes: the one idle longest is dropped to make room (its agent
// starts it again).

type memKey struct {
	agent string
	op    edgesync.OpID
}

type memPartial struct {
	hdr       core.PartialHeader
	buf       []byte
	created   time.Time
	updated   time.Time
	ephemeral bool
	// reserved is what the partial counts against the agent's quota (in
	// counters.local): its declared size while received, what it holds
	// once released (release).
	reserved int64
}

type memPartials struct {
	mu    sync.Mutex
	m     map[memKey]*memPartial
	bytes int64 // declared sizes of the partials held
}

func (m *memPartials) init() { m.m = map[memKey]*memPartial{} }

// get returns a copy of the partial's header and how much is held.
func (m *memPartials) get(agent string, op edgesync.OpID) (core.PartialHeader, int64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.m[memKey{agent, op}]
	if !ok {
		return core.PartialHeader{}, 0, false
	}
	return p.hdr, int64(len(p.buf)), true
}

// add holds a new partial, dropping the partials idle longest while the
// budget would be exceeded; it returns those dropped.
func (m *memPartials) add(agent string, hdr core.PartialHeader, now time.Time, ephemeral bool, budget int64) []memDropped {
	m.mu.Lock()
	defer m.mu.Unlock()
	var dropped []memDropped
	for m.bytes+hdr.Size > budget && len(m.m) > 0 {
		var oldest memKey
		var at time.Time
		for k, p := range m.m {
			if at.IsZero() || p.updated.Before(at) {
				oldest, at = k, p.updated
			}
		}
		dropped = append(dropped, memDropped{oldest.agent, m.m[oldest].reserved})
		m.bytes -= m.m[oldest].hdr.Size
		delete(m.m, oldest)
	}
	m.m[memKey{agent, hdr.OpID}] = &memPartial{hdr: hdr, buf: make([]byte, 0, hdr.Size), created: now, updated: now, ephemeral: ephemeral,
		reserved: hdr.Size}
	m.bytes += hdr.Size
	return dropped
}

type memDropped struct {
	agent string
	size  int64
}

// write appends data at offset; found is false when the partial is not
// held here. grew is what its reservation grew by: a released partial
// reserves what it holds.
func (m *memPartials) write(agent string, op edgesync.OpID, offset int64, data []byte, now time.Time) (found bool, grew int64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, found := m.m[memKey{agent, op}]
	if !found {
		return false, 0, nil
	}
	held := int64(len(p.buf))
	if offset != held {
		return true, 0, fmt.Errorf("%w: write at offset %d, but %d bytes are held", core.ErrOutOfOrder, offset, held)
	}
	if held+int64(len(data)) > p.hdr.Size {
		return true, 0, fmt.Errorf("%w: write of %d bytes at %d passes the declared size %d", core.ErrTooLarge, len(data), offset, p.hdr.Size)
	}
	p.buf = append(p.buf, data...)
	p.updated = now
	if n := int64(len(p.buf)); n > p.reserved {
		grew, p.reserved = n-p.reserved, n
	}
	return true, grew, nil
}

// release makes the partial reserve only what it holds and returns the
// change of its reservation (0 or less); found is false when the partial
// is not held here.
func (m *memPartials) release(agent string, op edgesync.OpID) (d int64, found bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, found := m.m[memKey{agent, op}]
	if !found {
		return 0, false
	}
	d = int64(len(p.buf)) - p.reserved
	p.reserved = int64(len(p.buf))
	return d, true
}

// unreserved returns what a partial received again must reserve to count
// its declared size, as when it began: 0 unless it was released.
func (m *memPartials) unreserved(agent string, op edgesync.OpID) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.m[memKey{agent, op}]; ok {
		return p.hdr.Size - p.reserved
	}
	return 0
}

// reserveMore adds n to the partial's reservation and reports whether it
// is still held (if not, the caller gives n back).
func (m *memPartials) reserveMore(agent string, op edgesync.OpID, n int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.m[memKey{agent, op}]
	if ok {
		p.reserved += n
	}
	return ok
}

// take removes the partial and returns it.
func (m *memPartials) take(agent string, op edgesync.OpID) (*memPartial, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{agent, op}
	p, ok := m.m[k]
	if ok {
		delete(m.m, k)
		m.bytes -= p.hdr.Size
	}
	return p, ok
}

// restore puts back a partial that take removed, unless the op was begun
// again meanwhile; it reports whether it did.
func (m *memPartials) restore(agent string, p *memPartial) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := memKey{agent, p.hdr.OpID}
	if _, ok := m.m[k]; ok {
		return false
	}
	m.m[k] = p
	m.bytes += p.hdr.Size
	return true
}

// list returns the headers and held sizes of agent's partials that may
// be resumed.
func (m *memPartials) list(agent string) []core.PartialInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []core.PartialInfo
	for k, p := range m.m {
		if k.agent == agent && !p.ephemeral {
			out = append(out, core.PartialInfo{Header: p.hdr, Held: int64(len(p.buf)), Reserved: p.reserved})
		}
	}
	return out
}

// expire removes the partials not written to since cutoff.
func (m *memPartials) expire(cutoff time.Time) []memDropped {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []memDropped
	for k, p := range m.m {
		if p.updated.Before(cutoff) {
			out = append(out, memDropped{k.agent, p.reserved})
			m.bytes -= p.hdr.Size
			delete(m.m, k)
		}
	}
	return out
}
