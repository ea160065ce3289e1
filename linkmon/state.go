package linkmon

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
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
	// Remove a leftover of a crash mid-write. Its error is ignored: the
	// leftover is never read, and the next save truncates it and reports
	// whatever stops that.
	_ = os.Remove(path + ".tmp")
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

// saveState writes the status file: tmp, fsync, rename, fsync dir.
func saveState(path string, p *persisted) error {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("save link status: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save link status: %w", err)
	}
	if _, err = f.Write(append(b, '\n')); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
		return fmt.Errorf("save link status: %w", err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("save link status: sync dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("save link status: sync dir: %w", err)
	}
	return nil
}
