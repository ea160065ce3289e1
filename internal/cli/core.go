package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/admin"
	"github.com/edge-sync/edge-sync/core/jsstore"
	"github.com/edge-sync/edge-sync/internal/logging"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/spf13/cobra"
)

const coreLong = `Runs the core receiver: a QUIC listener with mutual TLS that verifies,
applies deltas, de-duplicates, stores and acknowledges what agents send.
ls, get and tail read what arrived, state and events: through the running
core's admin socket (DATA_DIR/core.sock) or, when no core runs here, the
store itself (the bbolt file, or JetStream for store.backend "jetstream").
verify and salvage check and rescue a stopped core's damaged bbolt store.

--check-config validates the file and checks it against this machine, then
exits: the TLS files load and the certificate is signed by the CA, the
listen and metrics addresses resolve, the data directory can be created
and written. Relative paths in the file are relative to its directory.`

const coreExample = `  edge-sync core --config /etc/edge-sync/core.hcl --check-config
  edge-sync core --config /etc/edge-sync/core.hcl
  edge-sync core ls --config core.hcl --agent ship-7 --prefix sensors/
  edge-sync core get --config core.hcl --agent ship-7 sensors/pump-3 -o pump-3.json
  edge-sync core ls --config core.hcl --agent ship-7 --events
  edge-sync core get --config core.hcl --agent ship-7 --event 42
  edge-sync core tail --config core.hcl --agent ship-7 --follow --payload
  edge-sync core tail --config core.hcl --agent ship-7 -o events/
  edge-sync core verify --config core.hcl
  edge-sync core salvage --config core.hcl`

func newCoreCmd(env Env) *cobra.Command {
	var f serviceFlags
	c := &cobra.Command{
		Use:     "core --config FILE [--check-config] [--log-level LEVEL]",
		Long:    coreLong,
		Example: coreExample,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(c, args[0])
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			if f.cfgPath == "" {
				return usagef("core", "--config is required")
			}
			return runCore(c.Context(), env, f.cfgPath, f.logLevel, f.check)
		},
	}
	f.register(c, "core")
	c.AddCommand(newCoreLsCmd(env), newCoreGetCmd(env), newCoreTailCmd(env))
	c.AddCommand(newCoreStoreCmds(env)...)
	return c
}

func runCore(ctx context.Context, env Env, cfgPath, logLevel string, check bool) error {
	cfg, err := config.LoadCore(cfgPath)
	if err != nil {
		return err
	}
	cfg.Log.Level = cmp.Or(logLevel, cfg.Log.Level)
	if check {
		return checkConfig(env, cfgPath, cfg.Check, fmt.Sprintf("listen %s, store %s", cfg.Listen, storeName(cfg)))
	}
	if _, err := pki.ServerTLSConfig(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key); err != nil {
		return tlsError(cfgPath, "core", err)
	}
	log, err := logging.New("core", env.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	if err := serveCore(ctx, cfg, log); err != nil {
		if errors.Is(err, core.ErrCorrupt) && cfg.Store.Backend != config.BackendJetStream {
			return fmt.Errorf("%w\n%s", err, coreStoreAdvice(cfgPath, cfg.StorePath()))
		}
		if ctx.Err() == nil { // it did not start, or stopped by itself
			return diagnose(cfgPath, err, cfg.Check)
		}
		return err
	}
	return nil
}

// storeName says where a core stores, for --check-config.
func storeName(cfg config.Core) string {
	if cfg.Store.Backend == config.BackendJetStream {
		return fmt.Sprintf("jetstream %s, prefix %s", strings.Join(cfg.Store.JetStream.URLs, ","), cfg.Store.JetStream.Prefix)
	}
	return cfg.StorePath()
}

// coreRunning is what serveCore started, for the demo and tests.
type coreRunning struct {
	srv   *core.Server
	store coreStore
	addr  net.Addr
}

// coreStore is a core's store as the command line uses it: either
// backend, and Apply for tests and the demo.
type coreStore interface {
	core.Backend
	Apply(agent string, hdr core.PartialHeader, r io.Reader) (core.Result, error)
}

var (
	_ coreStore = (*core.Store)(nil)
	_ coreStore = (*jsstore.Store)(nil)
)

// openStore opens the store of cfg's backend.
func openStore(ctx context.Context, cfg config.Core, log hclogLogger) (coreStore, error) {
	if cfg.Store.Backend == config.BackendJetStream {
		st, err := jsstore.OpenStore(ctx, cfg, jsstore.Options{Logger: log.Named("store")})
		if err != nil {
			return nil, &natsDownError{urls: cfg.Store.JetStream.URLs, err: err}
		}
		return st, nil
	}
	return core.OpenStore(cfg)
}

func serveCore(ctx context.Context, cfg config.Core, log hclogLogger) error {
	_, stop, err := startCore(ctx, cfg, log)
	if err != nil {
		return err
	}
	<-ctx.Done()
	log.Info("shutting down")
	return stop()
}

// startCore opens the store, starts the QUIC listener, the admin socket and
// the metrics listener; stop closes them in order and waits.
func startCore(ctx context.Context, cfg config.Core, log hclogLogger) (*coreRunning, func() error, error) {
	return startCoreOn(ctx, cfg, log, nil)
}

// startCoreOn is startCore serving QUIC on pc, when not nil, instead of a
// socket it binds to cfg.Listen: a socket a test holds across the core's
// restarts. Without pc, a socket passed by socket activation (systemd's
// ListenDatagram=; sockact.go) comes before cfg.Listen. stop closes pc.
func startCoreOn(ctx context.Context, cfg config.Core, log hclogLogger, pc net.PacketConn) (*coreRunning, func() error, error) {
	tlsConf, err := pki.ServerTLSConfig(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return nil, nil, err
	}
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	srv, err := core.New(cfg, store, core.Options{TLS: tlsConf, Logger: log})
	if err != nil {
		closeLogged(log, "store", store.Close)
		return nil, nil, err
	}
	if pc == nil {
		if pc, err = activationSocket(); err != nil {
			closeLogged(log, "store", store.Close)
			return nil, nil, err
		}
		if pc != nil {
			log.Info("QUIC socket passed by socket activation; listen in the config file is not used", "addr", pc.LocalAddr().String(), "listen", cfg.Listen)
		}
	}
	if pc == nil {
		if pc, err = net.ListenPacket("udp", cfg.Listen); err != nil {
			closeLogged(log, "store", store.Close)
			return nil, nil, listenError("listen", "udp", cfg.Listen, err)
		}
	}
	// The last started stops first: the listeners before the server, the
	// server before the store they all read.
	stops := stopper{store.Close, pc.Close}
	stops.add(background(ctx, func(ctx context.Context) error { return srv.Serve(ctx, pc) }, srv.Close))

	adm, err := admin.NewServer(filepath.Join(cfg.DataDir, "core.sock"), store, log.Named("admin"), admin.WithLiveAgents(srv))
	if err != nil {
		log.Warn("admin socket not available; `core ls/get/tail` need the core stopped", "error", err)
	} else {
		stops.add(background(ctx, adm.Serve, adm.Close))
	}
	if cfg.Metrics.Listen != "" {
		stopMetrics, err := serveMetrics(cfg.Metrics.Listen, coreMetrics(srv, store), log)
		if err != nil {
			closeLogged(log, "core", stops.stop)
			return nil, nil, err
		}
		stops.add(stopMetrics)
	}
	return &coreRunning{srv: srv, store: store, addr: pc.LocalAddr()}, stops.stop, nil
}
