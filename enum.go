package edgesync

import (
	"fmt"
	"strconv"
	"strings"
)

// enumText is the text form of the package's small enums (LinkClass,
// Priority, OpKind, SyncMode): value v is named names[v]; values below
// first have no name (OpKind and SyncMode start at 1).
type enumText struct {
	what  string // in errors: "link class"
	short string // in String of an unknown value: "linkclass(9)"
	first int
	names []string
}

func (e enumText) valid(v uint8) bool { return int(v) >= e.first && int(v) < len(e.names) }

// String returns v's name, or short(v) for a value without one.
func (e enumText) String(v uint8) string {
	if e.valid(v) {
		return e.names[v]
	}
	return e.short + "(" + strconv.Itoa(int(v)) + ")"
}

// marshal is MarshalText: a value without a name is an error.
func (e enumText) marshal(v uint8) ([]byte, error) {
	if !e.valid(v) {
		return nil, fmt.Errorf("invalid %s %d", e.what, v)
	}
	return []byte(e.names[v]), nil
}

// parse finds s among the names, case-insensitive and trimmed.
func (e enumText) parse(s string) (uint8, bool) {
	t := strings.ToLower(strings.TrimSpace(s))
	for i := e.first; i < len(e.names); i++ {
		if t == e.names[i] {
			return uint8(i), true
		}
	}
	return 0, false
}

// unknown is the error for s, which names no value; more lists other
// forms accepted.
func (e enumText) unknown(s, more string) error {
	return fmt.Errorf("unknown %s %q (want one of %s%s)", e.what, s, strings.Join(e.names[e.first:], ", "), more)
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
