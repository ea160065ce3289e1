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
	"github.com/edge-sync/edge-sync/internal/statuspage"
)

type hclogLogger = hclog.Logger

// serveMetrics serves h (the status page at /, /metrics) on addr until
// the returned stop is called.
func serveMetrics(addr string, h http.Handler, log hclog.Logger) (stop func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError("metrics.listen", "tcp", addr, err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Info("metrics", "addr", ln.Addr().String())
	serve := func(context.Context) error {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("metrics server: %w", err)
		}
		return nil
	}
	return background(context.Background(), serve, hs.Close), nil
}

func coreMetrics(srv *core.Server, store core.Backend) http.Handler {
	return statuspage.Core(srv, srv.MetricsHandler(store))
}

func agentMetrics(a *agent.Agent) http.Handler { return statuspage.Agent(a) }

// serveControl starts the agent's control API on its unix socket (and TCP
// address, if configured); stop closes it and waits.
func serveControl(ctx context.Context, a *agent.Agent, cfg config.Agent, log hclog.Logger) (stop func() error, err error) {
	if cfg.ControlSocket() == "" && cfg.Control.TCP == "" {
		return func() error { return nil }, nil
	}
	cs, err := control.NewServer(a, cfg.Control, cfg.ControlSocket(), log.Named("control"))
	if err != nil {
		return nil, err
	}
	return background(ctx, cs.Serve, cs.Close), nil
}

// background runs serve (a blocking server loop) in a goroutine until the
// returned stop is called; stop calls closeFn, waits for serve to return
// and returns serve's error, else closeFn's. So whoever starts a server
// also waits for it. The loop keeps ctx's values but not its
// cancellation: stop ends it.
func background(ctx context.Context, serve func(context.Context) error, closeFn func() error) (stop func() error) {
	done := make(chan error, 1)
	go func() { done <- serve(context.WithoutCancel(ctx)) }()
	return func() error {
		cerr := closeFn()
		if err := <-done; err != nil {
			return err
		}
		return cerr
	}
}

// stopper stops what a command started, the last started first.
type stopper []func() error

// add appends a stop function.
func (s *stopper) add(stop func() error) { *s = append(*s, stop) }

// stop runs the stop functions in reverse order and returns the first
// error; every one runs whatever the others return.
func (s stopper) stop() error {
	var first error
	for i := len(s) - 1; i >= 0; i-- {
		if err := s[i](); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// closeLogged calls closeFn and logs its error, for cleanup after a
// failure that is already being returned.
func closeLogged(log hclog.Logger, what string, closeFn func() error) {
	if err := closeFn(); err != nil {
		log.Warn(what+": close", "error", err)
	}
}
