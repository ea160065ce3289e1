package admin

import (
	"context"
	"fmt"
	"net/http"

	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/jsonhttp"
)

// The running core's figures of each agent (GET /v1/agents/live): live
// connections, when last heard from, ops and bytes received, the last op.
// They are the process's, not the store's (a restart starts them afresh),
// so only a running core answers them; the same figures are in /metrics
// (edge_sync_core_agent_*) and on the core's status page.

// AgentLister gives the running core's figures of each agent it has heard
// from since it started; *core.Server is one.
type AgentLister interface {
	Agents() []core.AgentFigures
}

var _ AgentLister = (*core.Server)(nil)

// Option changes what Handler and NewServer serve.
type Option func(*options)

type options struct {
	live AgentLister
}

// WithLiveAgents serves GET /v1/agents/live from l.
func WithLiveAgents(l AgentLister) Option {
	return func(o *options) { o.live = l }
}

// liveHandler answers GET /v1/agents/live: l's figures, or 404 when the
// API serves a store without its core.
func liveHandler(l AgentLister) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if l == nil {
			writeJSON(w, nil, fmt.Errorf("%w: no live agent figures here: this admin API serves a store, not a running core", core.ErrNotFound))
			return
		}
		writeJSON(w, jsonhttp.NonNil(l.Agents()), nil)
	}
}

// LiveAgents returns the running core's figures of each agent it has
// heard from since it started (at most core.MaxTrackedAgents), by name.
// With no core running it fails with ErrNoCore: the store does not keep
// them.
func (c *Client) LiveAgents(ctx context.Context) ([]core.AgentFigures, error) {
	var out []core.AgentFigures
	err := c.getJSON(ctx, "/v1/agents/live", nil, &out)
	return out, err
}
