package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/logging"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/outbox"
)

const agentLong = `Runs the edge agent: keeps every op producers hand it in a durable priority
outbox, watches the link to each core, and sends over QUIC with mutual TLS,
adapting how it sends to the link class. Producers use 'edge-sync put' or
the control API; operators use 'edge-sync ctl'.

--check-config validates the file and checks it against this machine, then
exits: the TLS files load and the certificate is signed by the CA, the
data directory can be created and written, the control API's token is
long enough. Errors name the field and its file:line. Relative paths in
the file are relative to the file's directory.`

const agentExample = `  edge-sync agent --config /etc/edge-sync/agent.hcl --check-config
  edge-sync agent --config /etc/edge-sync/agent.hcl
  edge-sync agent --config agent.hcl --log-level debug`

func newAgentCmd(env Env) *cobra.Command {
	var f serviceFlags
	c := leafCmd("agent", "agent --config FILE [--check-config] [--log-level LEVEL]", agentLong, agentExample,
		func(ctx context.Context) error {
			if f.cfgPath == "" {
				return usagef("agent", "--config is required")
			}
			return runAgent(ctx, env, f.cfgPath, f.logLevel, f.check)
		})
	f.register(c, "agent")
	return c
}

// serviceFlags are the flags of agent and core: the config file, the
// check, the log level.
type serviceFlags struct {
	cfgPath, logLevel string
	check             bool
}

func (f *serviceFlags) register(c *cobra.Command, what string) {
	fs := c.Flags()
	fs.StringVar(&f.cfgPath, "config", "", what+" config file (HCL)")
	fs.BoolVar(&f.check, "check-config", false, "validate the config and check it against this machine, then exit")
	fs.StringVar(&f.logLevel, "log-level", "", "override log.level (trace, debug, info, warn, error)")
	completeFlag(c, "config", hclFiles)
	completeFlag(c, "log-level", complete("trace", "debug", "info", "warn", "error"))
}

// checkConfig is --check-config for agent and core: it runs the config's
// check against this machine and, when that passes, prints that the file
// is ok with summary, what the service would run.
func checkConfig(env Env, cfgPath string, check func() error, summary string) error {
	if err := check(); err != nil {
		return fmt.Errorf("%s:\n%w", cfgPath, err)
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%s)\n", cfgPath, summary)
	return nil
}

func runAgent(ctx context.Context, env Env, cfgPath, logLevel string, check bool) error {
	cfg, err := config.LoadAgent(cfgPath)
	if err != nil {
		return err
	}
	cfg.Log.Level = cmp.Or(logLevel, cfg.Log.Level)
	if check {
		return checkConfig(env, cfgPath, cfg.Check, fmt.Sprintf("%d endpoint(s), outbox %s", len(cfg.Endpoints), cfg.OutboxPath()))
	}
	if _, err := pki.ClientTLSConfig(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key, ""); err != nil {
		return tlsError(cfgPath, "agent", err)
	}
	log, err := logging.New("agent", env.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	_, stop, err := startAgent(ctx, cfg, agent.Options{Logger: log})
	switch {
	case errors.Is(err, outbox.ErrCorrupt):
		return fmt.Errorf("%w\n%s", err, corruptAdvice(cfg.OutboxPath()))
	case errors.Is(err, outbox.ErrLocked):
		return anotherAgent(cfg, err)
	case err != nil:
		return diagnose(cfgPath, err, cfg.Check)
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
	removePID, err := writePID(cfg)
	if err != nil {
		closeLogged(log, "agent", stops.stop)
		return nil, nil, err
	}
	stops.add(removePID)
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
