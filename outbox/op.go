package outbox

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
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
	// ID is the op's ID when it must be known before Enqueue returns (the
	// agent sends a large op's first chunks while the outbox writes it):
	// one that NewID returned, used for one Enqueue. Zero takes a fresh one.
	ID edgesync.OpID
}

// Op is a stored operation's metadata; its payload is read with OpenPayload.
type Op struct {
	ID       edgesync.OpID
	Endpoint string
	Key      string
	Priority edgesync.Priority
	Kind     edgesync.OpKind
	Size     int64 // payload bytes
	// Hash is the SHA-256 of the payload as Enqueue read it from the
	// producer, before it was written; it travels to the core, which
	// checks the bytes it stores against it. Zero for an op stored by
	// format version 1, which kept no hash.
	Hash        [32]byte
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
	ReasonDamaged    Reason = 3 // its stored bytes failed their checksum: quarantined
	NumReasons              = 4
)

// String returns "capacity", "expired", "superseded" or "damaged".
func (r Reason) String() string {
	switch r {
	case ReasonCapacity:
		return "capacity"
	case ReasonExpired:
		return "expired"
	case ReasonSuperseded:
		return "superseded"
	case ReasonDamaged:
		return "damaged"
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

// Record layouts, the value under ops/<id>. Version 2 (every op Enqueue
// writes since format version 2):
//
//	[0] record version 2  [1] priority  [2] kind (kindCode)  [3] flags (bit 0: summary sent)
//	[4:12] size  [12:20] enqueued unix ns  [20:28] expires unix ns (0: never)
//	[28:60] SHA-256 of the payload
//	then uvarint-length-prefixed endpoint, key, summary,
//	then CRC-32C (castagnoli) of the op ID followed by every byte before it.
//
// Version 1 (format version 1) is the same without the hash and the CRC:
// the fields follow byte 28 directly and end the record. A v1 op keeps its
// v1 record (MarkSummarySent rewrites it as v1), so that it is never
// mistaken for an op whose payload has checksums.
const (
	opRecordV1      = 1
	opRecordV2      = 2
	opHeaderLen     = 28
	opHeaderLenV2   = opHeaderLen + 32
	flagSummarySent = 1
)

// recordSum is the CRC-32C that seals a version 2 record rec (without
// its last 4 bytes) of op id.
func recordSum(id edgesync.OpID, rec []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, id[:]), castagnoli, rec)
}

func encodeOp(op *Op) []byte {
	v2 := op.Hash != [32]byte{}
	n := opHeaderLen
	if v2 {
		n = opHeaderLenV2
	}
	b := make([]byte, n, n+3*binary.MaxVarintLen32+len(op.Endpoint)+len(op.Key)+len(op.Summary)+4)
	b[0] = opRecordV1
	if v2 {
		b[0] = opRecordV2
		copy(b[opHeaderLen:], op.Hash[:])
	}
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
	if v2 {
		b = binary.BigEndian.AppendUint32(b, recordSum(op.ID, b))
	}
	return b
}

// decodeOp decodes op id's record. A version 2 record whose checksum
// fails gives ErrDamaged (the disk changed it); any other bad record
// gives ErrCorrupt (no version of the outbox writes it).
func decodeOp(id edgesync.OpID, b []byte) (Op, error) {
	op := Op{ID: id}
	hdr := opHeaderLen
	if len(b) > 0 && b[0] == opRecordV2 {
		if len(b) < opHeaderLenV2+3+4 {
			return op, fmt.Errorf("op %s: record is %d bytes, too short for its checksum: %w", id, len(b), ErrDamaged)
		}
		body := b[:len(b)-4]
		if recordSum(id, body) != binary.BigEndian.Uint32(b[len(body):]) {
			return op, fmt.Errorf("op %s: record fails its checksum: %w", id, ErrDamaged)
		}
		copy(op.Hash[:], b[opHeaderLen:opHeaderLenV2])
		if op.Hash == [32]byte{} {
			return op, fmt.Errorf("op %s: version 2 record without a payload hash: %w", id, ErrCorrupt)
		}
		b, hdr = body, opHeaderLenV2
	}
	if len(b) < hdr {
		return op, fmt.Errorf("op %s: record is %d bytes, want at least %d: %w", id, len(b), hdr, ErrCorrupt)
	}
	if b[0] != opRecordV1 && b[0] != opRecordV2 {
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
	rest := b[hdr:]
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
