package edgesync

import (
	"fmt"
	"strconv"
	"strings"
)

// LinkClass is the link monitor's name for what a link can carry.
type LinkClass uint8

// The link classes of docs/design.md#link-classes. Unknown is the zero
// value: fewer samples than the classifier needs.
const (
	Unknown LinkClass = iota
	Fiber
	Broadband
	Mobile
	Satellite
	Intermittent

	numLinkClasses
)

var linkClassNames = [numLinkClasses]string{"unknown", "fiber", "broadband", "mobile", "satellite", "intermittent"}

// LinkClasses lists every class, fastest first, Unknown last.
func LinkClasses() []LinkClass {
	return []LinkClass{Fiber, Broadband, Mobile, Satellite, Intermittent, Unknown}
}

// Valid reports whether c is a known class.
func (c LinkClass) Valid() bool { return c < numLinkClasses }

// String returns the class's name, e.g. "satellite".
func (c LinkClass) String() string {
	if c.Valid() {
		return linkClassNames[c]
	}
	return "linkclass(" + strconv.Itoa(int(c)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (c LinkClass) MarshalText() ([]byte, error) {
	if !c.Valid() {
		return nil, fmt.Errorf("invalid link class %d", uint8(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *LinkClass) UnmarshalText(b []byte) error {
	v, err := ParseLinkClass(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// ParseLinkClass accepts a class's name, case-insensitive.
func ParseLinkClass(s string) (LinkClass, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	for i, n := range linkClassNames {
		if t == n {
			return LinkClass(i), nil
		}
	}
	return 0, fmt.Errorf("unknown link class %q (want one of %s)", s, strings.Join(linkClassNames[:], ", "))
}
