package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/logging"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/internal/unixsock"
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
		case "ls", "get", "tail":
			return runCoreRead(ctx, env, args[0], args[1:])
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
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("core data dir: %w", err)
	}
	store, err := core.Open(cfg.StorePath(), core.Config{
		Quota:           cfg.DefaultQuota,
		AgentQuota:      func(a string) int64 { q, _ := cfg.Quota(a); return q },
		MaxObjectSize:   cfg.Limits.MaxOpBytes,
		EventMaxCount:   int64(cfg.Store.EventRetention),
		AppliedMaxAge:   cfg.Store.DedupRetention,
		AppliedMaxCount: int64(cfg.Store.DedupMaxEntries),
		PartialMaxAge:   cfg.Store.PartialMaxAge,
	})
	if err != nil {
		return nil, nil, err
	}
	srv, err := core.NewServer(core.ServerConfig{
		Name: cfg.Name, TLS: tlsConf, Store: store, Allow: cfg.Quota,
		MaxOpBytes: cfg.Limits.MaxOpBytes, MaxStreams: cfg.Limits.MaxStreams,
		MaxConnections: cfg.Limits.MaxConnections, Logger: log,
	})
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	pc, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("core listen %s: %w", cfg.Listen, err)
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(context.WithoutCancel(ctx), pc) }()

	var closers []func()
	admin, err := unixsock.Listen(filepath.Join(cfg.DataDir, "core.sock"))
	if err != nil {
		log.Warn("admin socket not available; `core ls/get/tail` need the core stopped", "error", err)
	} else {
		hs := &http.Server{Handler: core.AdminHandler(store), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(admin) }()
		closers = append(closers, func() { hs.Close() })
	}
	if cfg.Metrics.Listen != "" {
		stopMetrics, err := serveMetrics(cfg.Metrics.Listen, coreMetrics(srv, store), log)
		if err != nil {
			srv.Close()
			<-serveDone
			pc.Close()
			store.Close()
			for _, c := range closers {
				c()
			}
			return nil, nil, err
		}
		closers = append(closers, stopMetrics)
	}
	stop := func() error {
		for _, c := range closers {
			c()
		}
		srv.Close()
		err := <-serveDone
		pc.Close()
		if cerr := store.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return &coreRunning{srv: srv, store: store, addr: pc.LocalAddr()}, stop, nil
}

func runCoreRead(ctx context.Context, env Env, sub string, args []string) error {
	name := "core " + sub
	fs := newFlagSet(env, name, coreUsage)
	cfgPath := fs.String("config", "", "core config file (for data_dir)")
	dataDir := fs.String("data-dir", "", "core data directory (instead of --config)")
	agent := fs.String("agent", "", "agent name (its certificate's name)")
	prefix := fs.String("prefix", "", "ls: only keys with this prefix")
	out := fs.String("o", "", "get: write the data to this file instead of stdout")
	from := fs.Uint64("from", 1, "tail: first event sequence number")
	follow := fs.Bool("follow", false, "tail: keep printing new events until interrupted")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, name, args); err != nil {
		return err
	}
	dir := *dataDir
	if *cfgPath != "" {
		cfg, err := config.LoadCore(*cfgPath)
		if err != nil {
			return err
		}
		dir = cfg.DataDir
	}
	if dir == "" {
		dir = config.DefaultCore().DataDir
	}
	if *agent == "" && sub != "ls" {
		return usagef(name, "--agent is required")
	}
	if sub == "get" && fs.NArg() != 1 {
		return usagef(name, "want exactly one KEY, got %d arguments", fs.NArg())
	}
	if sub != "get" && fs.NArg() > 0 {
		return usagef(name, "unexpected argument %q", fs.Arg(0))
	}
	r := coreReader{socket: filepath.Join(dir, "core.sock"), storePath: filepath.Join(dir, "core.db")}
	if *cfgPath != "" {
		if cfg, err := config.LoadCore(*cfgPath); err == nil {
			r.storePath = cfg.StorePath()
		}
	}
	switch sub {
	case "ls":
		if *agent == "" {
			var agents []string
			if err := r.getJSON(ctx, "/v1/agents", nil, &agents); err != nil {
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
		var vs []core.VersionInfo
		if err := r.getJSON(ctx, "/v1/keys", url.Values{"agent": {*agent}, "prefix": {*prefix}, "limit": {"100000"}}, &vs); err != nil {
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
	case "get":
		w := env.Stdout
		if *out != "" {
			f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		return r.get(ctx, *agent, fs.Arg(0), w)
	default: // tail
		next := *from
		for {
			var evs []core.EventInfo
			if err := r.getJSON(ctx, "/v1/events", url.Values{"agent": {*agent}, "from": {strconv.FormatUint(next, 10)}, "limit": {"1000"}}, &evs); err != nil {
				return err
			}
			for _, e := range evs {
				if *asJSON {
					_ = json.NewEncoder(env.Stdout).Encode(e)
				} else {
					fmt.Fprintf(env.Stdout, "%d\t%s\t%s\t%d bytes\t%s\t%s\n", e.Seq, e.Stored.Format(time.RFC3339), e.Priority, e.Size, e.Key, e.OpID)
				}
				next = e.Seq + 1
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
}

// coreReader reads the store through the running core's admin socket, or
// the store file when no core runs.
type coreReader struct {
	socket, storePath string
}

var errNoAdmin = errors.New("no running core")

func (r coreReader) do(ctx context.Context, path string, q url.Values) (*http.Response, error) {
	if _, err := os.Stat(r.socket); err != nil {
		return nil, errNoAdmin
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://core"+path+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := unixClient(r.socket).Do(req)
	if err != nil {
		return nil, errNoAdmin
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var e struct{ Error string }
		_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		return nil, fmt.Errorf("core: %s", e.Error)
	}
	return resp, nil
}

func (r coreReader) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := r.do(ctx, path, q)
	if errors.Is(err, errNoAdmin) {
		return r.fromStore(func(s *core.Store) error {
			rec := &memResponse{header: http.Header{}}
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, path+"?"+q.Encode(), nil)
			core.AdminHandler(s).ServeHTTP(rec, req)
			if rec.code != 0 && rec.code != http.StatusOK {
				var e struct{ Error string }
				_ = json.Unmarshal(rec.body, &e)
				return fmt.Errorf("core store: %s", e.Error)
			}
			return json.Unmarshal(rec.body, v)
		})
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func (r coreReader) get(ctx context.Context, agent, key string, w io.Writer) error {
	resp, err := r.do(ctx, "/v1/get", url.Values{"agent": {agent}, "key": {key}})
	if errors.Is(err, errNoAdmin) {
		return r.fromStore(func(s *core.Store) error {
			v, obj, err := s.Current(agent, key)
			if err != nil {
				return err
			}
			_, err = io.Copy(w, io.NewSectionReader(obj, 0, v.Size))
			return err
		})
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return err
}

func (r coreReader) fromStore(fn func(*core.Store) error) error {
	if _, err := os.Stat(r.storePath); err != nil {
		return fmt.Errorf("no running core (no %s) and no store at %s", r.socket, r.storePath)
	}
	s, err := core.Open(r.storePath, core.Config{OpenTimeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("%w (is a core running without its admin socket?)", err)
	}
	defer s.Close()
	return fn(s)
}

// memResponse is a minimal in-memory http.ResponseWriter.
type memResponse struct {
	header http.Header
	code   int
	body   []byte
}

func (m *memResponse) Header() http.Header         { return m.header }
func (m *memResponse) WriteHeader(code int)        { m.code = code }
func (m *memResponse) Write(b []byte) (int, error) { m.body = append(m.body, b...); return len(b), nil }
