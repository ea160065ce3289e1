package edgesync

import (
	"fmt"
	"strconv"
	"strings"
)

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

// OpKinds lists every kind.
func OpKinds() []OpKind { return []OpKind{EventOp, StateOp} }

// Valid reports whether k is EventOp or StateOp.
func (k OpKind) Valid() bool { return k > 0 && k < numOpKinds }

// String returns "event" or "state".
func (k OpKind) String() string {
	if k.Valid() {
		return opKindNames[k]
	}
	return "opkind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (k OpKind) MarshalText() ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("invalid op kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *OpKind) UnmarshalText(b []byte) error {
	v, err := ParseOpKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ParseOpKind accepts "event" or "state", case-insensitive.
func ParseOpKind(s string) (OpKind, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for i, n := range opKindNames {
		if i > 0 && t == n {
			return OpKind(i), nil
		}
	}
	return 0, fmt.Errorf("unknown op kind %q (want one of %s)", s, strings.Join(opKindNames[1:], ", "))
}
