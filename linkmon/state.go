package linkmon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/edge-sync/edge-sync/internal/atomicfile"
)

// persisted is the status file kept across restarts: what was measured.
// The operator's pin and overrides are not in it: like the agent's
// transport.switch and transport.config, they last until the process
// ends. (Files written before kept a "pin"; it is ignored.)
type persisted struct {
	Version int         `json:"version"`
	Name    string      `json:"name"`
	SavedAt time.Time   `json:"saved_at"`
	Status  Status      `json:"status"`
	Latest  Measurement `json:"latest"`
	// CapacityBps is the last train estimate, so a restarted monitor
	// sizes its first probes for the link it knew.
	CapacityBps float64 `json:"capacity_bps"`
}

const stateVersion = 1

// loadState reads the status file; a missing file is no error.
func loadState(path string) (*persisted, error) {
	// Leftovers of a crash mid-write are litter, not state: a failure to
	// remove them must not cost the status, and the next save's rename
	// does not depend on them.
	_ = atomicfile.RemoveTemps(path)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load link status: %w", err)
	}
	var p persisted
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("load link status %s: %w: %w", path, ErrBadState, err)
	}
	if p.Version != stateVersion {
		return nil, fmt.Errorf("load link status %s: %w: version %d, want %d", path, ErrBadState, p.Version, stateVersion)
	}
	if !p.Status.Class.Valid() {
		return nil, fmt.Errorf("load link status %s: %w: class %v", path, ErrBadState, p.Status.Class)
	}
	return &p, nil
}

// saveState writes the status file atomically (see internal/atomicfile).
func saveState(path string, p *persisted) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("save link status: %w", err)
	}
	if err := atomicfile.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("save link status: %w", err)
	}
	return nil
}
