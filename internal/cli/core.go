package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/admin"
	"github.com/edge-sync/edge-sync/internal/logging"
	"github.com/edge-sync/edge-sync/internal/pki"
)

const coreUsage = `Usage:
  edge-sync core --config FILE [--check-config]
  edge-sync core ls   [--config FILE] --agent NAME [--prefix P] [--json]
  edge-sync core get  [--config FILE] --agent NAME [-o FILE] KEY
  edge-sync core tail [--config FILE] --agent NAME [--from SEQ] [--follow] [--json]

Runs the core receiver: a QUIC listener with mutual TLS that verifies,
applies deltas, de-duplicates, stores and acknowledges what agents send.
ls, get and tail read what arrived, through the running core's admin socket
(DATA_DIR/core.sock) or, when the core is stopped, the store file itself.

Examples:
  edge-sync core --config /etc/edge-sync/core.hcl --check-config
  edge-sync core --config /etc/edge-sync/core.hcl
  edge-sync core ls --config core.hcl --agent ship-7 --prefix sensors/
  edge-sync core get --config core.hcl --agent ship-7 sensors/pump-3 -o pump-3.json
  edge-sync core tail --config core.hcl --agent ship-7 --follow`

func runCore(ctx context.Context, env Env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "ls":
			return runCoreLs(ctx, env, args[1:])
		case "get":
			return runCoreGet(ctx, env, args[1:])
		case "tail":
			return runCoreTail(ctx, env, args[1:])
		}
	}
	fs := newFlagSet(env, "core", coreUsage)
	cfgPath := fs.String("config", "", "core config file (HCL)")
	check := fs.Bool("check-config", false, "validate the config and exit")
	logLevel := fs.String("log-level", "", "override log.level (trace, debug, info, warn, error)")
	if err := parseFlags(fs, "core", args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("core", "unexpected argument %q (subcommands: ls, get, tail)", fs.Arg(0))
	}
	if *cfgPath == "" {
		return usagef("core", "--config is required")
	}
	cfg, err := config.LoadCore(*cfgPath)
	if err != nil {
		return err
	}
	if *logLevel != "" {
		cfg.Log.Level = *logLevel
	}
	if *check {
		fmt.Fprintf(env.Stdout, "%s: ok\n", *cfgPath)
		return nil
	}
	log, err := logging.New("core", env.Stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	return serveCore(ctx, cfg, log)
}

// coreRunning is what serveCore started, for the demo and tests.
type coreRunning struct {
	srv   *core.Server
	store *core.Store
	addr  net.Addr
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
	tlsConf, err := pki.ServerTLSConfig(cfg.TLS.CA, cfg.TLS.Cert, cfg.TLS.Key)
	if err != nil {
		return nil, nil, err
	}
	store, err := core.OpenStore(cfg)
	if err != nil {
		return nil, nil, err
	}
	srv, err := core.New(cfg, store, core.Options{TLS: tlsConf, Logger: log})
	if err != nil {
		closeLogged(log, "store", store.Close)
		return nil, nil, err
	}
	pc, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		closeLogged(log, "store", store.Close)
		return nil, nil, fmt.Errorf("core listen %s: %w", cfg.Listen, err)
	}
	// The last started stops first: the listeners before the server, the
	// server before the store they all read.
	stops := stopper{store.Close, pc.Close}
	stops.add(background(ctx, func(ctx context.Context) error { return srv.Serve(ctx, pc) }, srv.Close))

	adm, err := admin.NewServer(filepath.Join(cfg.DataDir, "core.sock"), store, log.Named("admin"))
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

// coreReadFlags are the flags ls, get and tail share: where the core's
// data is and which agent's.
type coreReadFlags struct {
	cfgPath, dataDir, agent string
}

func (f *coreReadFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.cfgPath, "config", "", "core config file (for data_dir and store.path)")
	fs.StringVar(&f.dataDir, "data-dir", "", "core data directory (instead of --config)")
	fs.StringVar(&f.agent, "agent", "", "agent name (its certificate's name)")
}

// reader returns a reader of the core's data: through the running core's
// admin socket (DATA_DIR/core.sock), else from its store file.
func (f *coreReadFlags) reader() (*admin.SocketOrStore, error) {
	cfg := config.DefaultCore()
	if f.cfgPath != "" {
		var err error
		if cfg, err = config.LoadCore(f.cfgPath); err != nil {
			return nil, err
		}
	}
	if f.dataDir != "" {
		cfg.DataDir = f.dataDir
	}
	return admin.NewSocketOrStore(filepath.Join(cfg.DataDir, "core.sock"), cfg.StorePath()), nil
}

func runCoreLs(ctx context.Context, env Env, args []string) error {
	const name = "core ls"
	fs := newFlagSet(env, name, coreUsage)
	var f coreReadFlags
	f.register(fs)
	prefix := fs.String("prefix", "", "only keys with this prefix")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, name, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef(name, "unexpected argument %q", fs.Arg(0))
	}
	r, err := f.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	if f.agent == "" {
		agents, err := r.Agents(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(agents)
		}
		for _, a := range agents {
			fmt.Fprintln(env.Stdout, a)
		}
		return nil
	}
	vs, err := r.Keys(ctx, f.agent, *prefix, admin.MaxLimit)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(env.Stdout).Encode(vs)
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSIZE\tVERSION\tPRIORITY\tSTORED\tSHA256")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%.16s\n", v.Key, v.Size, v.Version, v.Priority, v.Stored.Format(time.RFC3339), v.SHA256)
	}
	return tw.Flush()
}

func runCoreGet(ctx context.Context, env Env, args []string) error {
	const name = "core get"
	fs := newFlagSet(env, name, coreUsage)
	var f coreReadFlags
	f.register(fs)
	out := fs.String("o", "", "write the data to this file instead of stdout")
	if err := parseFlags(fs, name, args); err != nil {
		return err
	}
	if f.agent == "" {
		return usagef(name, "--agent is required")
	}
	if fs.NArg() != 1 {
		return usagef(name, "want exactly one KEY, got %d arguments", fs.NArg())
	}
	r, err := f.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	if *out == "" {
		return r.Get(ctx, f.agent, fs.Arg(0), env.Stdout)
	}
	file, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = r.Get(ctx, f.agent, fs.Arg(0), file)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// No half-written object where the data was asked for.
		if rerr := os.Remove(*out); rerr != nil {
			return fmt.Errorf("%w (and removing the partial %s: %v)", err, *out, rerr)
		}
	}
	return err
}

// tailPage is how many events tail asks for at a time (a variable so that
// a test can page through a few).
var tailPage = 1000

func runCoreTail(ctx context.Context, env Env, args []string) error {
	const name = "core tail"
	fs := newFlagSet(env, name, coreUsage)
	var f coreReadFlags
	f.register(fs)
	from := fs.Uint64("from", 1, "first event sequence number")
	follow := fs.Bool("follow", false, "keep printing new events until interrupted")
	asJSON := fs.Bool("json", false, "print JSON, one event per line")
	if err := parseFlags(fs, name, args); err != nil {
		return err
	}
	if f.agent == "" {
		return usagef(name, "--agent is required")
	}
	if fs.NArg() > 0 {
		return usagef(name, "unexpected argument %q", fs.Arg(0))
	}
	r, err := f.reader()
	if err != nil {
		return err
	}
	defer r.Close()
	enc := json.NewEncoder(env.Stdout)
	next := *from
	for {
		evs, err := r.Events(ctx, f.agent, next, tailPage)
		if ctx.Err() != nil {
			return nil // interrupted: what was printed stands
		}
		if err != nil {
			return err
		}
		for _, e := range evs {
			if *asJSON {
				err = enc.Encode(e)
			} else {
				_, err = fmt.Fprintf(env.Stdout, "%d\t%s\t%s\t%d bytes\t%s\t%s\n", e.Seq, e.Stored.Format(time.RFC3339), e.Priority, e.Size, e.Key, e.OpID)
			}
			if err != nil {
				return err
			}
			next = e.Seq + 1
		}
		if len(evs) == tailPage {
			continue // more waiting
		}
		if !*follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}
