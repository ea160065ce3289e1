package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/admin"
	"github.com/edge-sync/edge-sync/core/jsstore"
	"github.com/edge-sync/edge-sync/internal/jsonhttp"
	"github.com/edge-sync/edge-sync/internal/units"
)

// This file is `core ls`, `core get` and `core tail`: reading what a core
// stored, through its admin socket while it runs, else from its store.

// coreReadFlags are the flags ls, get and tail share: where the core's
// data is and which agent's.
type coreReadFlags struct {
	cfgPath, dataDir, agent string
}

func (f *coreReadFlags) register(c *cobra.Command) {
	fs := c.Flags()
	fs.StringVar(&f.cfgPath, "config", "", "core config file (for data_dir and the store block)")
	fs.StringVar(&f.dataDir, "data-dir", "", "core data directory (instead of --config)")
	fs.StringVar(&f.agent, "agent", "", "agent name (its certificate's name)")
	completeFlag(c, "config", hclFiles)
	completeFlag(c, "data-dir", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return nil, cobra.ShellCompDirectiveFilterDirs
	})
	completeFlag(c, "agent", func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return f.agents(cmd.Context()), cobra.ShellCompDirectiveNoFileComp
	})
}

// agents lists the agents the core knows, for completion: nothing when
// the core's data cannot be read within a second.
func (f *coreReadFlags) agents(ctx context.Context) []string {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	r, err := f.reader(ctx)
	if err != nil {
		return nil
	}
	defer r.Close()
	agents, err := r.Agents(ctx)
	if err != nil {
		return nil
	}
	return agents
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
			st, err := jsstore.OpenStore(ctx, cfg, jsstore.Options{ReadOnly: true})
			if err != nil {
				return nil, &natsDownError{urls: cfg.Store.JetStream.URLs, err: err}
			}
			return st, nil
		}), nil
	}
	return admin.NewSocketOrStore(socket, cfg.StorePath()), nil
}

func newCoreLsCmd(env Env) *cobra.Command {
	const name = "core ls"
	var f coreReadFlags
	var prefix string
	var events, asJSON bool
	var from uint64
	c := leafCmd(name, "ls [--config FILE | --data-dir DIR] --agent NAME [--prefix P | --events [--from SEQ]] [--json]",
		"Lists the agents that sent anything; with --agent, that agent's keys and their\ncurrent versions; with --events, its events.",
		"  edge-sync core ls --config core.hcl\n  edge-sync core ls --config core.hcl --agent ship-7 --prefix sensors/\n  edge-sync core ls --config core.hcl --agent ship-7 --events --from 100",
		func(ctx context.Context) error {
			if events && (f.agent == "" || prefix != "") {
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
					return coreReadErr(err)
				}
				if asJSON {
					return json.NewEncoder(env.Stdout).Encode(jsonhttp.NonNil(agents))
				}
				for _, a := range agents {
					fmt.Fprintln(env.Stdout, a)
				}
				return nil
			}
			if events {
				p := eventPrinter{w: env.Stdout, json: asJSON}
				_, err := p.page(ctx, r, f.agent, from, admin.MaxLimit)
				return coreReadErr(err)
			}
			vs, err := r.Keys(ctx, f.agent, prefix, admin.MaxLimit)
			if err != nil {
				return f.notFound(err, "agent")
			}
			if asJSON {
				return json.NewEncoder(env.Stdout).Encode(jsonhttp.NonNil(vs))
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KEY\tSIZE\tVERSION\tPRIORITY\tSTORED\tSHA256")
			for _, v := range vs {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%.16s\n", v.Key, units.FormatBytes(v.Size), v.Version, v.Priority, v.Stored.Format(time.RFC3339), v.SHA256)
			}
			return tw.Flush()
		})
	c.Short = "list the agents, an agent's keys, or its events"
	f.register(c)
	fs := c.Flags()
	fs.StringVar(&prefix, "prefix", "", "only keys with this prefix")
	fs.BoolVar(&events, "events", false, "list the agent's events instead of its keys")
	fs.Uint64Var(&from, "from", 1, "with --events: first event sequence number")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func newCoreGetCmd(env Env) *cobra.Command {
	const name = "core get"
	var f coreReadFlags
	var out string
	var event uint64
	c := &cobra.Command{
		Use:     "get [--config FILE | --data-dir DIR] --agent NAME [-o FILE] (KEY | --event SEQ)",
		Short:   "write a key's current data, or an event's payload",
		Long:    "Writes the current version of KEY (or, with --event, the payload of the event\nwith that sequence number) to standard output or to -o FILE. Flags may come\nbefore or after KEY.",
		Example: "  edge-sync core get --config core.hcl --agent ship-7 sensors/pump-3 -o pump-3.json\n  edge-sync core get sensors/pump-3 --config core.hcl --agent ship-7\n  edge-sync core get --config core.hcl --agent ship-7 --event 42",
		Args:    cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			ctx := c.Context()
			if f.agent == "" {
				return usagef(name, "--agent is required")
			}
			if event == 0 && len(args) != 1 {
				return usagef(name, "want exactly one KEY (or --event SEQ), got %d arguments", len(args))
			}
			if event != 0 && len(args) != 0 {
				return usagef(name, "want a KEY or --event SEQ, not both")
			}
			r, err := f.reader(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			get := func(w io.Writer) error {
				if event != 0 {
					return f.eventNotFound(f.damaged(r.GetEvent(ctx, f.agent, event, w), "event "+strconv.FormatUint(event, 10)), event)
				}
				return f.notFound(f.damaged(r.Get(ctx, f.agent, args[0], w), args[0]), args[0])
			}
			if out == "" {
				return get(env.Stdout)
			}
			return writeFileFrom(out, get)
		},
	}
	f.register(c)
	c.Flags().StringVarP(&out, "output", "o", "", "write the data to this file instead of standard output")
	c.Flags().Uint64Var(&event, "event", 0, "get the payload of the event with this sequence number (see core tail)")
	return c
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

func newCoreTailCmd(env Env) *cobra.Command {
	const name = "core tail"
	var f coreReadFlags
	var from uint64
	var follow, asJSON, payload bool
	var dir string
	c := leafCmd(name, "tail [--config FILE | --data-dir DIR] --agent NAME [--from SEQ] [--follow] [--payload | -o DIR] [--json]",
		"Prints an agent's events from --from on, a line each (or JSON), with their\npayloads (--payload) or writing each payload to DIR/SEQ (-o DIR); --follow\nkeeps printing new ones until interrupted.",
		"  edge-sync core tail --config core.hcl --agent ship-7 --follow --payload\n  edge-sync core tail --config core.hcl --agent ship-7 -o events/",
		func(ctx context.Context) error {
			if f.agent == "" {
				return usagef(name, "--agent is required")
			}
			if payload && dir != "" {
				return usagef(name, "--payload prints payloads, -o writes them to files: choose one")
			}
			if dir != "" {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					return err
				}
			}
			r, err := f.reader(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			p := eventPrinter{w: env.Stdout, json: asJSON, payload: payload, dir: dir}
			return coreReadErr(tailEvents(ctx, r, &p, f.agent, from, follow))
		})
	c.Short = "print an agent's events, and follow new ones"
	f.register(c)
	fs := c.Flags()
	fs.Uint64Var(&from, "from", 1, "first event sequence number")
	fs.BoolVar(&follow, "follow", false, "keep printing new events until interrupted")
	fs.BoolVar(&asJSON, "json", false, "print JSON, one event per line")
	fs.BoolVar(&payload, "payload", false, "print each event's payload after it (in JSON: base64 in \"payload\")")
	fs.StringVarP(&dir, "output", "o", "", "write each event's payload to DIR/SEQ")
	return c
}

// tailEvents prints agent's events from from on, page by page; with
// follow it keeps looking for new ones every second until ctx ends.
func tailEvents(ctx context.Context, r *admin.SocketOrStore, p *eventPrinter, agent string, from uint64, follow bool) error {
	next := from
	for {
		n, err := p.page(ctx, r, agent, next, tailPage)
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
		if !follow {
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
	headed  bool   // the header line is printed
}

// eventsHeader heads the rows the eventPrinter prints, tab-separated as
// they are; it is printed once, before the first page.
const eventsHeader = "SEQ\tSTORED\tPRIORITY\tSIZE\tKEY\tOP"

// page prints up to n of agent's events from sequence number from on and
// returns how many there were.
func (p *eventPrinter) page(ctx context.Context, r *admin.SocketOrStore, agent string, from uint64, n int) (int, error) {
	evs, err := r.Events(ctx, agent, from, n)
	if err != nil {
		return 0, err
	}
	if !p.json && !p.headed {
		if _, err := fmt.Fprintln(p.w, eventsHeader); err != nil {
			return 0, err
		}
		p.headed = true
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

// coreReadErr says what to do when neither a running core nor its store
// could be read.
func coreReadErr(err error) error {
	var nats *natsDownError
	if errors.As(err, &nats) {
		return err // the core need not run; NATS must
	}
	if errors.Is(err, admin.ErrNoCore) {
		return fmt.Errorf("is the core running? %w (start it with: edge-sync core --config FILE, or give the --config or --data-dir of its data)", err)
	}
	return err
}
