package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/atomicfile"
)

// A running agent writes its process ID to DATA_DIR/agent.pid, so that a
// second agent started on the same data directory can say which process
// holds it. The file is only read when the outbox's lock is held, that is
// while the agent that wrote it runs; one left by a killed agent is
// overwritten by the next.

// pidFile is the agent's pid file in its data directory.
func pidFile(cfg config.Agent) string { return filepath.Join(cfg.DataDir, "agent.pid") }

// writePID records this process as the agent of cfg's data directory;
// remove deletes the record.
func writePID(cfg config.Agent) (remove func() error, err error) {
	path := pidFile(cfg)
	if err := atomicfile.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("pid file: %w", err)
	}
	return func() error {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pid file: %w", err)
		}
		return nil
	}, nil
}

// anotherAgent is the error of an agent whose outbox another process
// holds: which one, and what to do.
func anotherAgent(cfg config.Agent, err error) error {
	pid := "pid unknown"
	if b, rerr := os.ReadFile(pidFile(cfg)); rerr == nil {
		if n, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && n > 0 {
			pid = "pid " + strconv.Itoa(n)
		}
	}
	return fmt.Errorf("another edge-sync agent is using %s (%s): its outbox %s is locked; stop that agent first, or give this one its own data_dir (%w)",
		cfg.DataDir, pid, cfg.OutboxPath(), err)
}
