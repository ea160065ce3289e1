package edgesync

import (
	"strings"

	"github.com/edge-sync/edge-sync/internal/enum"
)

// SyncMode is how the sender treats data under the current link class.
// It is distinct from the codec's per-op encoding: under SyncDeltaZstd an op
// with no known base is still sent as zstd.
type SyncMode uint8

// The sync modes of docs/design.md#sync-modes.
const (
	// SyncFull sends payloads as they are (fiber).
	SyncFull SyncMode = iota + 1
	// SyncFullZstd sends whole payloads, zstd-compressed (broadband).
	SyncFullZstd
	// SyncDelta sends deltas against the core's version where one is known
	// (mobile).
	SyncDelta
	// SyncDeltaZstd sends compressed deltas; with SummaryOnly in the
	// parameters, non-critical data goes as summaries first (satellite).
	SyncDeltaZstd
	// SyncStoreAndForward holds data while the link is down and drains by
	// priority in small chunks when a window opens (intermittent).
	SyncStoreAndForward

	numSyncModes
)

var syncModeNames = [numSyncModes]string{"", "full", "full+zstd", "delta", "delta+zstd", "store-and-forward"}

var syncModeText = enumText{what: "sync mode", Names: enum.Names{Short: "syncmode", First: 1, List: syncModeNames[:]}}

// SyncModes lists every mode.
func SyncModes() []SyncMode {
	return []SyncMode{SyncFull, SyncFullZstd, SyncDelta, SyncDeltaZstd, SyncStoreAndForward}
}

// Valid reports whether m is a known mode.
func (m SyncMode) Valid() bool { return m > 0 && m < numSyncModes }

// String returns the mode's name, e.g. "delta+zstd".
func (m SyncMode) String() string { return syncModeText.String(uint8(m)) }

// MarshalText implements encoding.TextMarshaler.
func (m SyncMode) MarshalText() ([]byte, error) { return syncModeText.marshal(uint8(m)) }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *SyncMode) UnmarshalText(b []byte) error { return enum.UnmarshalText(m, b, ParseSyncMode) }

// ParseSyncMode accepts a mode's name, case-insensitive; "delta-zstd" and
// "full-zstd" (or with "_") are accepted for the "+" forms, and "_" for
// "-" in "store_and_forward".
func ParseSyncMode(s string) (SyncMode, error) {
	t := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-")
	t = strings.ReplaceAll(t, "-zstd", "+zstd")
	if v, ok := syncModeText.parse(t); ok {
		return SyncMode(v), nil
	}
	return 0, syncModeText.unknown(s, "")
}
