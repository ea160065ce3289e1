// Package enum is the text form of edge-sync's small enums of uint8
// values: the root package's link classes, priorities, op kinds and sync
// modes, and codec's modes and levels. Each package keeps its own error
// texts; the names, String and the text codec's plumbing are here.
package enum

import (
	"strconv"
	"strings"
)

// Names names value v List[v]; values below First, and past the list,
// have no name.
type Names struct {
	Short string // in String of a value without a name: "linkclass(9)"
	First int
	List  []string
}

// Valid reports whether v has a name.
func (e Names) Valid(v uint8) bool { return int(v) >= e.First && int(v) < len(e.List) }

// String returns v's name, or Short(v) for a value without one.
func (e Names) String(v uint8) string {
	if e.Valid(v) {
		return e.List[v]
	}
	return e.Short + "(" + strconv.Itoa(int(v)) + ")"
}

// Lookup finds the value named t, exactly as written.
func (e Names) Lookup(t string) (uint8, bool) {
	for i := e.First; i < len(e.List); i++ {
		if t == e.List[i] {
			return uint8(i), true
		}
	}
	return 0, false
}

// Want lists the names, for an error saying what is accepted.
func (e Names) Want() string { return strings.Join(e.List[e.First:], ", ") }

// UnmarshalText is encoding.TextUnmarshaler's UnmarshalText for a type
// parsed by parse.
func UnmarshalText[T any](dst *T, b []byte, parse func(string) (T, error)) error {
	v, err := parse(string(b))
	if err != nil {
		return err
	}
	*dst = v
	return nil
}
