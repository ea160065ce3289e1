package edgesync

import "github.com/edge-sync/edge-sync/internal/enum"

// OpKind says whether an operation is an event (every one is delivered) or
// a keyed state update (a newer version of the key supersedes an older
// one). The wire carries these values as they are; the outbox and the
// core's store keep older on-disk codes and map them at their format
// boundary.
type OpKind uint8

// The op kinds; zero is no kind.
const (
	// EventOp ops are all delivered and appended to the core's event log;
	// none is ever superseded.
	EventOp OpKind = 1
	// StateOp ops are keyed updates: the newest version of an endpoint's
	// key wins, and an older one not yet sent may be dropped.
	StateOp OpKind = 2

	numOpKinds = 3
)

var opKindNames = [numOpKinds]string{"", "event", "state"}

var opKindText = enumText{what: "op kind", Names: enum.Names{Short: "opkind", First: 1, List: opKindNames[:]}}

// OpKinds lists every kind.
func OpKinds() []OpKind { return []OpKind{EventOp, StateOp} }

// Valid reports whether k is EventOp or StateOp.
func (k OpKind) Valid() bool { return k > 0 && k < numOpKinds }

// String returns "event" or "state".
func (k OpKind) String() string { return opKindText.String(uint8(k)) }

// MarshalText implements encoding.TextMarshaler.
func (k OpKind) MarshalText() ([]byte, error) { return opKindText.marshal(uint8(k)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *OpKind) UnmarshalText(b []byte) error { return enum.UnmarshalText(k, b, ParseOpKind) }

// ParseOpKind accepts "event" or "state", case-insensitive.
func ParseOpKind(s string) (OpKind, error) {
	if v, ok := opKindText.parse(s); ok {
		return OpKind(v), nil
	}
	return 0, opKindText.unknown(s, "")
}
