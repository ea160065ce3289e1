package outbox

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// NewOp is what a producer hands to Enqueue.
type NewOp struct {
	Endpoint string            // target endpoint, required
	Key      string            // names the object; required for state ops
	Priority edgesync.Priority // critical..background
	Kind     edgesync.OpKind   // EventOp or StateOp; zero means EventOp
	Payload  io.Reader         // streamed to disk; nil means empty
	Summary  []byte            // optional summary sent ahead of the payload
	TTL      time.Duration     // 0 means Options.DefaultTTL for the priority
}

// Op is a stored operation's metadata; its payload is read with OpenPayload.
type Op struct {
	ID          edgesync.OpID
	Endpoint    string
	Key         string
	Priority    edgesync.Priority
	Kind        edgesync.OpKind
	Size        int64     // payload bytes
	Summary     []byte    // nil if none
	EnqueuedAt  time.Time // from Options.Now
	ExpiresAt   time.Time // zero if the op never expires
	SummarySent bool      // set by MarkSummarySent
}

// Reason says why an op was dropped without an Ack.
type Reason uint8

// Drop reasons.
const (
	ReasonCapacity   Reason = 0 // evicted by a higher-priority op when full
	ReasonExpired    Reason = 1 // its TTL ended (PurgeExpired)
	ReasonSuperseded Reason = 2 // a newer State op for the same key arrived
	NumReasons              = 3
)

// String returns "capacity", "expired" or "superseded".
func (r Reason) String() string {
	switch r {
	case ReasonCapacity:
		return "capacity"
	case ReasonExpired:
		return "expired"
	case ReasonSuperseded:
		return "superseded"
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Drop reports an op removed without an Ack.
type Drop struct {
	ID       edgesync.OpID
	Endpoint string
	Key      string
	Priority edgesync.Priority
	Reason   Reason
	Size     int64
}

func dropOf(op *Op, r Reason) Drop {
	return Drop{ID: op.ID, Endpoint: op.Endpoint, Key: op.Key, Priority: op.Priority, Reason: r, Size: op.Size}
}

// Record layout (opRecordVersion 1), the value under ops/<id>:
//
//	[0] record version  [1] priority  [2] kind (kindCode)  [3] flags (bit 0: summary sent)
//	[4:12] size  [12:20] enqueued unix ns  [20:28] expires unix ns (0: never)
//	then uvarint-length-prefixed endpoint, key, summary.
const (
	opRecordVersion = 1
	opHeaderLen     = 28
	flagSummarySent = 1
)

func encodeOp(op *Op) []byte {
	b := make([]byte, opHeaderLen, opHeaderLen+3*binary.MaxVarintLen32+len(op.Endpoint)+len(op.Key)+len(op.Summary))
	b[0] = opRecordVersion
	b[1] = byte(op.Priority)
	b[2] = kindCode(op.Kind)
	if op.SummarySent {
		b[3] |= flagSummarySent
	}
	binary.BigEndian.PutUint64(b[4:], uint64(op.Size))
	binary.BigEndian.PutUint64(b[12:], uint64(op.EnqueuedAt.UnixNano()))
	var exp int64
	if !op.ExpiresAt.IsZero() {
		exp = op.ExpiresAt.UnixNano()
	}
	binary.BigEndian.PutUint64(b[20:], uint64(exp))
	for _, f := range [][]byte{[]byte(op.Endpoint), []byte(op.Key), op.Summary} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

func decodeOp(id edgesync.OpID, b []byte) (Op, error) {
	op := Op{ID: id}
	if len(b) < opHeaderLen {
		return op, fmt.Errorf("op %s: record is %d bytes, want at least %d: %w", id, len(b), opHeaderLen, ErrCorrupt)
	}
	if b[0] != opRecordVersion {
		return op, fmt.Errorf("op %s: record version %d: %w", id, b[0], ErrCorrupt)
	}
	op.Priority = edgesync.Priority(b[1])
	kind, kindOK := kindOfCode(b[2])
	op.Kind = kind
	if !op.Priority.Valid() || !kindOK || b[3]&^flagSummarySent != 0 {
		return op, fmt.Errorf("op %s: bad priority %d, kind %d or flags %#x: %w", id, b[1], b[2], b[3], ErrCorrupt)
	}
	op.SummarySent = b[3]&flagSummarySent != 0
	op.Size = int64(binary.BigEndian.Uint64(b[4:]))
	if op.Size < 0 {
		return op, fmt.Errorf("op %s: negative size: %w", id, ErrCorrupt)
	}
	op.EnqueuedAt = time.Unix(0, int64(binary.BigEndian.Uint64(b[12:])))
	if exp := int64(binary.BigEndian.Uint64(b[20:])); exp != 0 {
		op.ExpiresAt = time.Unix(0, exp)
	}
	rest := b[opHeaderLen:]
	var fields [3][]byte
	for i, max := range [3]int{MaxEndpointLen, MaxKeyLen, MaxSummaryLen} {
		n, k := binary.Uvarint(rest)
		if k <= 0 || n > uint64(max) || n > uint64(len(rest)-k) {
			return op, fmt.Errorf("op %s: bad length of field %d: %w", id, i, ErrCorrupt)
		}
		fields[i] = rest[k : k+int(n)]
		rest = rest[k+int(n):]
	}
	if len(rest) != 0 {
		return op, fmt.Errorf("op %s: %d trailing bytes: %w", id, len(rest), ErrCorrupt)
	}
	op.Endpoint = string(fields[0])
	op.Key = string(fields[1])
	if len(fields[2]) > 0 {
		op.Summary = append([]byte(nil), fields[2]...)
	}
	return op, nil
}

func (n *NewOp) validate() error {
	switch {
	case n.Endpoint == "":
		return fmt.Errorf("endpoint is empty: %w", ErrInvalid)
	case len(n.Endpoint) > MaxEndpointLen:
		return fmt.Errorf("endpoint is %d bytes, max %d: %w", len(n.Endpoint), MaxEndpointLen, ErrInvalid)
	case len(n.Key) > MaxKeyLen:
		return fmt.Errorf("key is %d bytes, max %d: %w", len(n.Key), MaxKeyLen, ErrInvalid)
	case len(n.Summary) > MaxSummaryLen:
		return fmt.Errorf("summary is %d bytes, max %d: %w", len(n.Summary), MaxSummaryLen, ErrInvalid)
	case !n.Priority.Valid():
		return fmt.Errorf("priority %d: %w", uint8(n.Priority), ErrInvalid)
	case n.Kind != 0 && !n.Kind.Valid():
		return fmt.Errorf("kind %d (want %d for event or %d for state): %w", uint8(n.Kind), edgesync.EventOp, edgesync.StateOp, ErrInvalid)
	case n.Kind == edgesync.StateOp && n.Key == "":
		return fmt.Errorf("state op needs a key: %w", ErrInvalid)
	case n.TTL < 0:
		return fmt.Errorf("ttl %v is negative: %w", n.TTL, ErrInvalid)
	}
	return nil
}
