package edgesync

import (
	"fmt"
	"strconv"
	"strings"
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

// SyncModes lists every mode.
func SyncModes() []SyncMode {
	return []SyncMode{SyncFull, SyncFullZstd, SyncDelta, SyncDeltaZstd, SyncStoreAndForward}
}

// Valid reports whether m is a known mode.
func (m SyncMode) Valid() bool { return m > 0 && m < numSyncModes }

// String returns the mode's name, e.g. "delta+zstd".
func (m SyncMode) String() string {
	if m.Valid() {
		return syncModeNames[m]
	}
	return "syncmode(" + strconv.Itoa(int(m)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (m SyncMode) MarshalText() ([]byte, error) {
	if !m.Valid() {
		return nil, fmt.Errorf("invalid sync mode %d", uint8(m))
	}
	return []byte(m.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *SyncMode) UnmarshalText(b []byte) error {
	v, err := ParseSyncMode(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// ParseSyncMode accepts a mode's name, case-insensitive; "delta-zstd" and
// "full-zstd" are accepted for the "+" forms.
func ParseSyncMode(s string) (SyncMode, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.NewReplacer("-zstd", "+zstd", "_", "-").Replace(t)
	for i, n := range syncModeNames {
		if i > 0 && t == n {
			return SyncMode(i), nil
		}
	}
	return 0, fmt.Errorf("unknown sync mode %q (want one of %s)", s, strings.Join(syncModeNames[1:], ", "))
}
