package edgesync

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/edge-sync/edge-sync/internal/enum"
)

// OpID identifies an operation. It is 16 bytes: the enqueue time in Unix
// nanoseconds (big-endian, so byte order is time order) followed by 8 bytes
// that make it unique even when two IDs share a nanosecond.
type OpID [16]byte

// Time returns the enqueue time encoded in the ID.
func (id OpID) Time() time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(id[:8])))
}

// IsZero reports whether id is the zero ID, which no generator produces.
func (id OpID) IsZero() bool { return id == OpID{} }

// String returns the ID as 32 lowercase hex digits.
func (id OpID) String() string { return hex.EncodeToString(id[:]) }

// Compare orders IDs by time, then by their unique tail.
func (id OpID) Compare(o OpID) int {
	for i := range id {
		if id[i] != o[i] {
			if id[i] < o[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// MarshalText implements encoding.TextMarshaler.
func (id OpID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (id *OpID) UnmarshalText(b []byte) error { return enum.UnmarshalText(id, b, ParseOpID) }

// ParseOpID parses the 32-hex-digit form that String returns.
func ParseOpID(s string) (OpID, error) {
	var id OpID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("op id %q: want %d hex digits, got %d", s, 2*len(id), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return OpID{}, fmt.Errorf("op id %q: %w", s, err)
	}
	return id, nil
}

// IDGenerator hands out strictly increasing OpIDs. IDs stay increasing even
// if the wall clock steps back, as long as the generator is seeded with the
// largest ID already stored (see Observe). It is safe for concurrent use.
type IDGenerator struct {
	mu    sync.Mutex
	last  uint64 // nanoseconds of the last ID
	node  uint32 // random per generator
	seq   uint32
	nowFn func() time.Time
}

// NewIDGenerator returns a generator with a random node tail.
func NewIDGenerator() *IDGenerator {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error since Go 1.24
	return &IDGenerator{node: binary.BigEndian.Uint32(b[:]), nowFn: time.Now}
}

// Observe tells the generator about an existing ID so that every later ID
// sorts after it.
func (g *IDGenerator) Observe(id OpID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if t := binary.BigEndian.Uint64(id[:8]); t > g.last {
		g.last = t
	}
}

// Next returns a new ID, greater than every ID returned or observed before.
func (g *IDGenerator) Next() OpID {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := uint64(g.nowFn().UnixNano())
	if now <= g.last {
		now = g.last + 1
	}
	g.last = now
	g.seq++
	var id OpID
	binary.BigEndian.PutUint64(id[:8], now)
	binary.BigEndian.PutUint32(id[8:12], g.node)
	binary.BigEndian.PutUint32(id[12:], g.seq)
	return id
}
