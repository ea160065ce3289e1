package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/admin"
	"github.com/edge-sync/edge-sync/core/jsstore"
	"github.com/edge-sync/edge-sync/internal/logging"
	"github.com/edge-sync/edge-sync/internal/pki"
)

const coreUsage = `Usage:
  edge-sync core --config FILE [--check-config]
  edge-sync core ls   [--config FILE] --agent NAME [--prefix P | --events [--from SEQ]] [--json]
  edge-sync core get  [--config FILE] --agent NAME [-o FILE] (KEY | --event SEQ)
  edge-sync core tail [--config FILE] --agent NAME [--from SEQ] [--follow] [--payload | -o DIR] [--json]

Runs the core receiver: a QUIC listener with mutual TLS that verifies,
applies deltas, de-duplicates, stores and acknowledges what agents send.
ls, get and tail read what arrived, state and events: through the running
core's admin socket (DATA_DIR/core.sock) or, when no core runs here, the
store itself (the bbolt file, or JetStream for store.backend "jetstream").

Examples:
  edge-sync core --config /etc/edge-sync/core.hcl --check-config
  edge-sync core --config /etc/edge-sync/core.hcl
  edge-sync core ls --config core.hcl --agent ship-7 --prefix sensors/
  edge-sync core get --config core.hcl --agent ship-7 sensors/pump-3 -o pump-3.json
  edge-sync core ls --config core.hcl --agent ship-7 --events
  edge-sync core get --config core.hcl --agent ship-7 --event 42
  edge-sync core tail --config core.hcl --agent ship-7 --follow --payload
  edge-sync core tail --config core.hcl --agent ship-7 -o events/`

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
		return jsstore.OpenStore(ctx, cfg, jsstore.Options{Logger: log.Named("store")})
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
	fs.StringVar(&f.cfgPath, "config", "", "core config file (for data_dir and the store block)")
	fs.StringVar(&f.dataDir, "data-dir", "", "core data directory (instead of --config)")
	fs.StringVar(&f.agent, "agent", "", "agent name (its certificate's name)")
}

// reader returns a reader of the core's data: through the running core's
// admin socket (DATA_DIR/core.sock), else from its store: the bbolt file,
// or JetStream, opened read-only.
func (f *coreReadFlags) reader(ctx context.Context) (*admin.SocketOrStore, error) {
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
	socket := filepath.Join(cfg.DataDir, "core.sock")
	if cfg.Store.Backend == config.BackendJetStream {
		return admin.NewSocketOrOpen(socket, func() (core.Backend, error) {
			return jsstore.OpenStore(ctx, cfg, jsstore.Options{ReadOnly: true})
		}), nil
	}
	return admin.NewSocketOrStore(socket, cfg.StorePath()), nil
}

func runCoreLs(ctx context.Context, env Env, args []string) error {
	const name = "core ls"
	fs := newFlagSet(env, name, coreUsage)
	var f coreReadFlags
	f.register(fs)
	prefix := fs.String("prefix", "", "only keys with this prefix")
	events := fs.Bool("events", false, "list the agent's events instead of its keys")
	from := fs.Uint64("from", 1, "with --events: first event sequence number")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, name, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef(name, "unexpected argument %q", fs.Arg(0))
	}
	if *events && (f.agent == "" || *prefix != "") {
		return usagef(name, "--events needs --agent, and lists events of every key (no --prefix)")
	}
	r, err := f.reader(ctx)
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
	if *events {
		p := eventPrinter{w: env.Stdout, json: *asJSON}
		_, err := p.page(ctx, r, f.agent, *from, admin.MaxLimit)
		return err
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
	event := fs.Uint64("event", 0, "get the payload of the event with this sequence number (see core tail)")
	if err := parseFlags(fs, name, args); err != nil {
		return err
	}
	if f.agent == "" {
		return usagef(name, "--agent is required")
	}
	if *event == 0 && fs.NArg() != 1 {
		return usagef(name, "want exactly one KEY (or --event SEQ), got %d arguments", fs.NArg())
	}
	if *event != 0 && fs.NArg() != 0 {
		return usagef(name, "want a KEY or --event SEQ, not both")
	}
	r, err := f.reader(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	get := func(w io.Writer) error {
		if *event != 0 {
			return r.GetEvent(ctx, f.agent, *event, w)
		}
		return r.Get(ctx, f.agent, fs.Arg(0), w)
	}
	if *out == "" {
		return get(env.Stdout)
	}
	return writeFileFrom(*out, get)
}

// writeFileFrom writes what get writes to a new file at path (mode 0600)
// and leaves no file behind when get fails: no half-written object where
// the data was asked for.
func writeFileFrom(path string, get func(io.Writer) error) error {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = get(file)
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if rerr := os.Remove(path); rerr != nil {
			return fmt.Errorf("%w (and removing the partial %s: %v)", err, path, rerr)
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
	payload := fs.Bool("payload", false, "print each event's payload after it (in JSON: base64 in \"payload\")")
	dir := fs.String("o", "", "write each event's payload to DIR/SEQ")
	if err := parseFlags(fs, name, args); err != nil {
		return err
	}
	if f.agent == "" {
		return usagef(name, "--agent is required")
	}
	if fs.NArg() > 0 {
		return usagef(name, "unexpected argument %q", fs.Arg(0))
	}
	if *payload && *dir != "" {
		return usagef(name, "--payload prints payloads, -o writes them to files: choose one")
	}
	if *dir != "" {
		if err := os.MkdirAll(*dir, 0o700); err != nil {
			return err
		}
	}
	r, err := f.reader(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	p := eventPrinter{w: env.Stdout, json: *asJSON, payload: *payload, dir: *dir}
	next := *from
	for {
		n, err := p.page(ctx, r, f.agent, next, tailPage)
		if ctx.Err() != nil {
			return nil // interrupted: what was printed stands
		}
		if err != nil {
			return err
		}
		if p.last >= next {
			next = p.last + 1
		}
		if n == tailPage {
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

// eventPrinter prints events as `core tail` and `core ls --events` do:
// a line each (or JSON), with the payload after it or written to a file
// in dir.
type eventPrinter struct {
	w       io.Writer
	json    bool
	payload bool
	dir     string
	last    uint64 // the sequence number of the last event printed
}

// page prints up to n of agent's events from sequence number from on and
// returns how many there were.
func (p *eventPrinter) page(ctx context.Context, r *admin.SocketOrStore, agent string, from uint64, n int) (int, error) {
	evs, err := r.Events(ctx, agent, from, n)
	if err != nil {
		return 0, err
	}
	enc := json.NewEncoder(p.w)
	for _, e := range evs {
		var data []byte
		if p.payload || p.dir != "" {
			var b bytes.Buffer
			if err := r.GetEvent(ctx, agent, e.Seq, &b); err != nil {
				return 0, fmt.Errorf("event %d: %w", e.Seq, err)
			}
			data = b.Bytes()
		}
		if p.dir != "" {
			file := filepath.Join(p.dir, strconv.FormatUint(e.Seq, 10))
			if err := writeFileFrom(file, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
				return 0, err
			}
		}
		switch {
		case p.json && p.payload:
			err = enc.Encode(struct {
				admin.EventInfo
				Payload []byte `json:"payload"`
			}{e, data})
		case p.json:
			err = enc.Encode(e)
		default:
			_, err = fmt.Fprintf(p.w, "%d\t%s\t%s\t%d bytes\t%s\t%s\n", e.Seq, e.Stored.Format(time.RFC3339), e.Priority, e.Size, e.Key, e.OpID)
			if err == nil && p.payload {
				if len(data) > 0 && data[len(data)-1] != '\n' {
					data = append(data, '\n')
				}
				_, err = p.w.Write(data)
			}
		}
		if err != nil {
			return 0, err
		}
		p.last = e.Seq
	}
	return len(evs), nil
}
