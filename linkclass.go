package edgesync

import "github.com/edge-sync/edge-sync/internal/enum"

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

var linkClassText = enumText{what: "link class", Names: enum.Names{Short: "linkclass", List: linkClassNames[:]}}

// LinkClasses lists every class, fastest first, Unknown last.
func LinkClasses() []LinkClass {
	return []LinkClass{Fiber, Broadband, Mobile, Satellite, Intermittent, Unknown}
}

// Valid reports whether c is a known class.
func (c LinkClass) Valid() bool { return c < numLinkClasses }

// String returns the class's name, e.g. "satellite".
func (c LinkClass) String() string { return linkClassText.String(uint8(c)) }

// MarshalText implements encoding.TextMarshaler.
func (c LinkClass) MarshalText() ([]byte, error) { return linkClassText.marshal(uint8(c)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (c *LinkClass) UnmarshalText(b []byte) error { return enum.UnmarshalText(c, b, ParseLinkClass) }

// ParseLinkClass accepts a class's name, case-insensitive.
func ParseLinkClass(s string) (LinkClass, error) {
	if v, ok := linkClassText.parse(s); ok {
		return LinkClass(v), nil
	}
	return 0, linkClassText.unknown(s, "")
}
