package agent

import "github.com/edge-sync/edge-sync/core"

// Until packed backfill has its capability, there is nothing to turn off.
func setCorePackedBackfill(*core.ServerConfig, bool) {}
func setAgentPackedBackfill(*Options, bool)          {}
