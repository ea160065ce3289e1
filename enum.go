package edgesync

import (
	"fmt"
	"strings"

	"github.com/edge-sync/edge-sync/internal/enum"
)

// enumText is the text form of the package's small enums (LinkClass,
// Priority, OpKind, SyncMode): value v is named List[v]; values below
// First have no name (OpKind and SyncMode start at 1).
type enumText struct {
	enum.Names
	what string // in errors: "link class"
}

// marshal is MarshalText: a value without a name is an error.
func (e enumText) marshal(v uint8) ([]byte, error) {
	if !e.Valid(v) {
		return nil, fmt.Errorf("invalid %s %d", e.what, v)
	}
	return []byte(e.List[v]), nil
}

// parse finds s among the names, case-insensitive and trimmed.
func (e enumText) parse(s string) (uint8, bool) {
	return e.Lookup(strings.ToLower(strings.TrimSpace(s)))
}

// unknown is the error for s, which names no value; more lists other
// forms accepted.
func (e enumText) unknown(s, more string) error {
	return fmt.Errorf("unknown %s %q (want one of %s%s)", e.what, s, e.Want(), more)
}
