package agent

import (
	"testing"

	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// TestSummaryFirstPacksOffer: Options.DisableSummaryFirstPacks, and
// DisablePackedBackfill (its former name, kept for the programs that set
// it), each take both capabilities of the packs of summary-first ops out
// of the agent's Hello, and nothing else; without them both are offered.
func TestSummaryFirstPacksOffer(t *testing.T) {
	const both = wire.CapSummariesPerStream | wire.CapPackedBackfill
	p := testutil.NewPKI(t, "site-1")
	for _, tc := range []struct {
		name string
		opts Options
		want wire.Capabilities
	}{
		{"default", Options{}, both},
		{"DisableSummaryFirstPacks", Options{DisableSummaryFirstPacks: true}, 0},
		{"DisablePackedBackfill", Options{DisablePackedBackfill: true}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgent(t, p, coretest.AgentConfig(t, p, "127.0.0.1:1"), tc.opts)
			def := newAgent(t, p, coretest.AgentConfig(t, p, "127.0.0.1:1"), Options{})
			got, all := a.eps["core"].caps(), def.eps["core"].caps()
			if got&both != tc.want {
				t.Errorf("the offer holds %b of the summary-first packs' %b; want %b", got&both, both, tc.want)
			}
			if got&^both != all&^both {
				t.Errorf("the offer's other capabilities are %b; want the default's %b", got&^both, all&^both)
			}
		})
	}
}
