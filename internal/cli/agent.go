package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/logging"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/outbox"
)

const agentUsage = `Usage: edge-sync agent --config FILE [--check-config] [--log-level LEVEL]

Runs the edge agent: keeps every op producers hand it in a durable priority
outbox, watches the link to each core, and sends over QUIC with mutual TLS,
adapting how it sends to the link class. Producers use 'edge-sync put' or
the control API; operators use 'edge-sync ctl'.

--check-config validates the file and loads the TLS files, then exits:
errors name the field and its file:line.

Examples:
  edge-sync agent --config /etc/edge-sync/agent.hcl --check-config
  edge-sync agent --config /etc/edge-sync/agent.hcl
  edge-sync agent --config agent.hcl --log-level debug`

func runAgent(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "agent", agentUsage)
	cfgPath := fs.String("config", "", "agent config file (HCL)")
	check := fs.Bool("check-config", false, "validate the config and the TLS files, then exit")
	logLevel := fs.String("log-level", "", "override log.level (trace, debug, info, warn, error)")
	if err := parseFlags(fs, "agent", args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("agent", "unexpected argument %q", fs.Arg(0))
	}
	if *cfgPath == "" {
		return usagef("agent", "--config is required")
	}
	cfg, err := config.LoadAgent(*cfgPath)
	if err != nil {
		return err
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
	}
	if _, err := pki.ClientTLSConfig(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key, ""); err != nil {
		return fmt.Errorf("%s: tls: %w", *cfgPath, err)
	}
	if *check {
		fmt.Fprintf(env.Stdout, "%s: ok (%d endpoint(s), outbox %s)\n", *cfgPath, len(cfg.Endpoints), cfg.OutboxPath())
		return nil
	}
	log, err := logging.New("agent", env.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	_, stop, err := startAgent(ctx, cfg, agent.Options{Logger: log})
	if errors.Is(err, outbox.ErrCorrupt) {
		return fmt.Errorf("%w\n%s", err, corruptAdvice(cfg.OutboxPath()))
	}
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	return stop()
}

// startAgent opens and starts the agent with its control API and metrics;
// stop closes them and waits.
func startAgent(ctx context.Context, cfg config.Agent, opts agent.Options) (*agent.Agent, func() error, error) {
	log := opts.Logger
	tlsConf, err := pki.ClientTLSConfig(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key, "")
	if err != nil {
		return nil, nil, err
	}
	opts.TLS = tlsConf
	a, err := agent.New(cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	if err := a.Start(ctx); err != nil {
		closeLogged(log, "agent", a.Close)
		return nil, nil, err
	}
	stops := stopper{a.Close}
	stopControl, err := serveControl(ctx, a, cfg, log)
	if err != nil {
		closeLogged(log, "agent", stops.stop)
		return nil, nil, err
	}
	stops.add(stopControl)
	if cfg.Metrics.Listen != "" {
		stopMetrics, err := serveMetrics(cfg.Metrics.Listen, agentMetrics(a), log)
		if err != nil {
			closeLogged(log, "agent", stops.stop)
			return nil, nil, err
		}
		stops.add(stopMetrics)
	}
	return a, stops.stop, nil
}
