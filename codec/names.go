package codec

import (
	"fmt"

	"github.com/edge-sync/edge-sync/internal/enum"
)

// enumNames is the text form of Mode and Level: value v is named List[v];
// 0 has no name. Failures wrap bad (ErrBadMode, ErrBadLevel).
type enumNames struct {
	enum.Names
	what string // in errors: "mode"
	bad  error
}

// marshal is MarshalText: a value without a name is an error.
func (e enumNames) marshal(v uint8) ([]byte, error) {
	if !e.Valid(v) {
		return nil, fmt.Errorf("marshal %s %d: %w", e.what, v, e.bad)
	}
	return []byte(e.List[v]), nil
}

// parse finds name t (lower case and trimmed) among the names; s is what
// the caller was given, for the error.
func (e enumNames) parse(s, t string) (uint8, error) {
	if v, ok := e.Lookup(t); ok {
		return v, nil
	}
	return 0, fmt.Errorf("parse %s %q (want one of %s): %w", e.what, s, e.Want(), e.bad)
}
