package edgesync

import (
	"strconv"
	"strings"

	"github.com/edge-sync/edge-sync/internal/enum"
)

// Priority orders operations: a lower number is sent first.
type Priority uint8

// The six priorities of docs/design.md#priorities.
const (
	Critical   Priority = 0 // alarms and anything a human waits for
	Schema     Priority = 1 // schema changes that later data depends on
	High       Priority = 2
	Normal     Priority = 3
	Analytics  Priority = 4
	Background Priority = 5 // bulk files, logs

	// NumPriorities is the number of priorities; valid values are below it.
	NumPriorities = 6
)

var priorityNames = [NumPriorities]string{"critical", "schema", "high", "normal", "analytics", "background"}

var priorityText = enumText{what: "priority", Names: enum.Names{Short: "priority", List: priorityNames[:]}}

// Priorities lists every priority, most urgent first.
func Priorities() []Priority {
	return []Priority{Critical, Schema, High, Normal, Analytics, Background}
}

// Valid reports whether p is one of the six priorities.
func (p Priority) Valid() bool { return p < NumPriorities }

// String returns the priority's name, e.g. "critical".
func (p Priority) String() string { return priorityText.String(uint8(p)) }

// SendsAtOnce reports whether ops of this priority skip batching and go out
// whenever any link is up (critical and schema).
func (p Priority) SendsAtOnce() bool { return p <= Schema }

// MarshalText implements encoding.TextMarshaler.
func (p Priority) MarshalText() ([]byte, error) { return priorityText.marshal(uint8(p)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *Priority) UnmarshalText(b []byte) error { return enum.UnmarshalText(p, b, ParsePriority) }

// ParsePriority accepts a priority's name ("critical", case-insensitive) or
// its number ("0".."5").
func ParsePriority(s string) (Priority, error) {
	if v, ok := priorityText.parse(s); ok {
		return Priority(v), nil
	}
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n >= 0 && n < NumPriorities {
		return Priority(n), nil
	}
	return 0, priorityText.unknown(s, ", or 0-5")
}
