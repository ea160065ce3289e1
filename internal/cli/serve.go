package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
)

type hclogLogger = hclog.Logger

// serveMetrics serves /metrics on addr until the returned stop is called.
func serveMetrics(addr string, h http.Handler, log hclog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "error", err)
		}
	}()
	log.Info("metrics", "addr", ln.Addr().String())
	return func() { hs.Close(); <-done }, nil
}

func coreMetrics(srv *core.Server, store *core.Store) http.Handler { return srv.MetricsHandler(store) }

func agentMetrics(a *agent.Agent) http.Handler { return a.MetricsHandler() }

// serveControl starts the agent's control API on its unix socket (and TCP
// address, if configured); stop closes it and waits.
func serveControl(ctx context.Context, a *agent.Agent, cfg config.Agent, log hclog.Logger) (stop func(), err error) {
	if cfg.ControlSocket() == "" && cfg.Control.TCP == "" {
		return func() {}, nil
	}
	cs, err := control.NewServer(a, cfg.Control, cfg.ControlSocket(), log.Named("control"))
	if err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := cs.Serve(context.WithoutCancel(ctx)); err != nil {
			log.Warn("control API stopped", "error", err)
		}
	}()
	return func() { cs.Close(); <-done }, nil
}
