package codec

import (
	"fmt"
	"strconv"
	"strings"
)

// enumNames is the text form of Mode and Level: value v is named names[v];
// 0 has no name. Failures wrap bad (ErrBadMode, ErrBadLevel).
type enumNames struct {
	what  string // in errors and in String of a value without a name: "mode"
	names []string
	bad   error
}

func (e enumNames) valid(v uint8) bool { return v > 0 && int(v) < len(e.names) }

// String returns v's name, or what(v) for a value without one.
func (e enumNames) String(v uint8) string {
	if e.valid(v) {
		return e.names[v]
	}
	return e.what + "(" + strconv.Itoa(int(v)) + ")"
}

// marshal is MarshalText: a value without a name is an error.
func (e enumNames) marshal(v uint8) ([]byte, error) {
	if !e.valid(v) {
		return nil, fmt.Errorf("marshal %s %d: %w", e.what, v, e.bad)
	}
	return []byte(e.names[v]), nil
}

// parse finds name t (lower case and trimmed) among the names; s is what
// the caller was given, for the error.
func (e enumNames) parse(s, t string) (uint8, error) {
	for i := 1; i < len(e.names); i++ {
		if t == e.names[i] {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("parse %s %q (want one of %s): %w", e.what, s, strings.Join(e.names[1:], ", "), e.bad)
}

// unmarshalText is UnmarshalText for a type parsed by parse.
func unmarshalText[T any](dst *T, b []byte, parse func(string) (T, error)) error {
	v, err := parse(string(b))
	if err != nil {
		return err
	}
	*dst = v
	return nil
}
