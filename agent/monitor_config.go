package agent

import (
	"fmt"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/linkmon"
)

// monitorConfig returns the link monitor's configuration of a monitor
// block (config.Monitor is linkmon.Config, read in its units), validated so
// that a bad combination is reported with linkmon's field name.
func monitorConfig(m config.Monitor) (linkmon.Config, error) {
	c := linkmon.Config(m)
	if err := c.Validate(); err != nil {
		return linkmon.Config{}, fmt.Errorf("monitor config: %w", err)
	}
	return c, nil
}
