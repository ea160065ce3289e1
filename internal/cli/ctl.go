package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linkmon"
)

// defaultSocket is the control socket of an agent with the default data
// directory.
const defaultSocket = "/var/lib/edge-sync/agent.sock"

const ctlUsage = `Usage: edge-sync ctl [connection flags] COMMAND [command flags] [args]

Sends one command to a running agent's control API and prints the answer
as a table, or as JSON with --json. The commands are those of the API:

  transport.send                   enqueue FILE|- (same flags as 'edge-sync put')
  transport.bandwidth.sync.queue   enqueue FILE|- at a priority (--priority required)
  transport.quality                latest link figures of an endpoint
  transport.bandwidth.status       class, figures, since, why, pin, parameters, backlog, drain ETA
  transport.bandwidth.measure      measure an endpoint now
  transport.bandwidth.history      measurements within --window
  transport.bandwidth.timeline     the status page's plots as a table: link, class, mode, queue per second
  transport.switch                 pin an endpoint: auto, a link class or a sync mode
  transport.config                 show the configuration, or change a class's parameters
  transport.stats                  counters per endpoint, priority and mode; outbox figures
  transport.bandwidth.sync.next    lease the next op (--out FILE), or --ack/--release ID
  transport.bandwidth.monitor.start  start monitoring an endpoint; --address adds a new one
  transport.bandwidth.monitor.stop   stop monitoring an endpoint
  transport.outbox.verify          read and check every op now; quarantine damaged ones
  transport.outbox.purge           delete quarantined ops: --all or IDs
  health                           is the agent there

The socket is --socket, else the one of --config agent.hcl, else
$EDGE_SYNC_SOCKET, else ` + defaultSocket + `. --addr with --token-file
uses the loopback TCP listener instead.

Examples:
  edge-sync ctl transport.bandwidth.status
  edge-sync ctl --config /etc/edge-sync/agent.hcl transport.stats --json
  edge-sync ctl transport.switch --endpoint core satellite
  edge-sync ctl transport.switch auto
  edge-sync ctl transport.config --class satellite --chunk-size 32KiB --interval 10m
  edge-sync ctl transport.bandwidth.sync.queue --priority critical --key alarms/pump-3 alarm.json
  edge-sync ctl transport.bandwidth.sync.next --priority critical --out op.bin
  edge-sync ctl transport.bandwidth.sync.next --ack 0190f3c2a1b24c55a0e1f00000000001
  edge-sync ctl transport.bandwidth.monitor.start --endpoint backup --address core2.example.net:7443
  edge-sync ctl --addr 127.0.0.1:7444 --token-file /etc/edge-sync/token health

Run 'edge-sync ctl COMMAND --help' for a command's flags.`

// connFlags say how to reach the agent; every ctl command and put take them.
type connFlags struct {
	socket, configPath, addr, tokenFile string
	json                                bool
}

// register adds the flags to fs; values already set (by flags before the
// command name) stay as defaults.
func (c *connFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.socket, "socket", c.socket, "agent control socket (default: from --config, $EDGE_SYNC_SOCKET, or "+defaultSocket+")")
	fs.StringVar(&c.configPath, "config", c.configPath, "agent config file to read the socket (or TCP address and token file) from")
	fs.StringVar(&c.addr, "addr", c.addr, "loopback TCP address of the control API (needs --token-file)")
	fs.StringVar(&c.tokenFile, "token-file", c.tokenFile, "bearer token file for --addr")
	fs.BoolVar(&c.json, "json", c.json, "print the answer as JSON")
}

// client resolves where the agent listens.
func (c *connFlags) client(name string) (*control.Client, error) {
	if c.addr != "" || c.tokenFile != "" {
		if c.addr == "" || c.tokenFile == "" {
			return nil, usagef(name, "--addr and --token-file go together")
		}
		if c.socket != "" {
			return nil, usagef(name, "give --socket or --addr, not both")
		}
		return tcpClient(name, c.addr, c.tokenFile)
	}
	sock := c.socket
	if sock == "" && c.configPath != "" {
		cfg, err := config.LoadAgent(c.configPath)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		sock = cfg.ControlSocket()
		if sock == "" {
			if cfg.Control.TCP == "" {
				return nil, fmt.Errorf("%s: %s turns the control API off (control.socket = \"off\", no control.tcp)", name, c.configPath)
			}
			return tcpClient(name, cfg.Control.TCP, cfg.Control.TokenFile)
		}
	}
	if sock == "" {
		sock = os.Getenv("EDGE_SYNC_SOCKET")
	}
	if sock == "" {
		sock = defaultSocket
	}
	return control.NewClient(sock), nil
}

func tcpClient(name, addr, tokenFile string) (*control.Client, error) {
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("%s: token: %w", name, err)
	}
	return control.NewClientTCP(addr, strings.TrimSpace(string(b))), nil
}

// ctlCommand is one command of ctl: its flags and what it does.
type ctlCommand struct {
	name  string
	usage string
	// setup registers the command's flags and returns its action.
	setup func(fs *flag.FlagSet) func(ctx context.Context, x *ctlRun) error
}

// ctlRun is one invocation: the client, the streams, the remaining args.
type ctlRun struct {
	env  Env
	name string
	c    *control.Client
	json bool
	args []string
}

// call runs a JSON command and prints its answer with table, or as JSON.
func (x *ctlRun) call(ctx context.Context, cmd string, req, resp any, table func(io.Writer)) error {
	var raw json.RawMessage
	if err := x.c.Call(ctx, cmd, req, &raw); err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	if x.json {
		_, err := fmt.Fprintf(x.env.Stdout, "%s\n", raw)
		return err
	}
	if err := json.Unmarshal(raw, resp); err != nil {
		return fmt.Errorf("%s: decode answer: %w", cmd, err)
	}
	table(x.env.Stdout)
	return nil
}

func (x *ctlRun) noArgs() error {
	if len(x.args) > 0 {
		return usagef(x.name, "unexpected arguments %q", x.args)
	}
	return nil
}

func runCtl(ctx context.Context, env Env, args []string) error {
	var conn connFlags
	top := newFlagSet(env, "ctl", ctlUsage)
	conn.register(top)
	if err := parseFlags(top, "ctl", args); err != nil {
		return err
	}
	rest := top.Args()
	if len(rest) == 0 {
		return usagef("ctl", "no command given (want one of %s, health)", strings.Join(control.Commands(), ", "))
	}
	var cmd *ctlCommand
	for _, c := range ctlCommands() {
		if c.name == rest[0] {
			cmd = &c
			break
		}
	}
	if cmd == nil {
		return usagef("ctl", "unknown command %q (want one of %s, health)", rest[0], strings.Join(control.Commands(), ", "))
	}
	name := "ctl " + cmd.name
	fs := newFlagSet(env, name, cmd.usage)
	conn.register(fs) // connection flags may also follow the command
	act := cmd.setup(fs)
	if err := parseFlags(fs, name, rest[1:]); err != nil {
		return err
	}
	c, err := conn.client(name)
	if err != nil {
		return err
	}
	defer c.Close()
	return act(ctx, &ctlRun{env: env, name: name, c: c, json: conn.json, args: fs.Args()})
}

func endpointFlag(fs *flag.FlagSet) *string {
	return fs.String("endpoint", "", "endpoint name; default: the agent's only or first endpoint")
}

func ctlCommands() []ctlCommand {
	return []ctlCommand{
		{control.CmdSend, "Usage: edge-sync ctl transport.send [--key K] [--priority P] [flags] FILE|-\n\nEnqueues FILE (or standard input) and prints the op's ID.\n\nExample:\n  edge-sync ctl transport.send --key cfg/site --state --priority schema site.json",
			func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
				return sendAction(fs, control.CmdSend, false)
			}},
		{control.CmdQueue, "Usage: edge-sync ctl transport.bandwidth.sync.queue --priority P [--key K] [flags] FILE|-\n\nEnqueues FILE (or standard input) at a priority and prints the op's ID.\n\nExample:\n  edge-sync ctl transport.bandwidth.sync.queue --priority critical --key alarms/pump-3 alarm.json",
			func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
				return sendAction(fs, control.CmdQueue, true)
			}},
		{control.CmdQuality, "Usage: edge-sync ctl transport.quality [--endpoint E]\n\nPrints the latest link figures of an endpoint.\n\nExample:\n  edge-sync ctl transport.quality --endpoint core",
			func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
				return measurementAction(fs, control.CmdQuality)
			}},
		{control.CmdMeasure, "Usage: edge-sync ctl transport.bandwidth.measure [--endpoint E]\n\nMeasures the link now (needs the endpoint's link monitor).\n\nExample:\n  edge-sync ctl transport.bandwidth.measure",
			func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
				return measurementAction(fs, control.CmdMeasure)
			}},
		{control.CmdStatus, "Usage: edge-sync ctl transport.bandwidth.status [--endpoint E]\n\nExplains the link: class and the figures behind it, since when and why,\nthe operator's pin, the sync parameters in force, the backlog per priority\nand the time to drain it at the measured bandwidth.\n\nExample:\n  edge-sync ctl transport.bandwidth.status --endpoint core",
			func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
				ep := endpointFlag(fs)
				return func(ctx context.Context, x *ctlRun) error {
					if err := x.noArgs(); err != nil {
						return err
					}
					var st agent.LinkStatus
					return x.call(ctx, control.CmdStatus, control.EndpointRequest{Endpoint: *ep}, &st, func(w io.Writer) { printStatus(w, st, time.Now()) })
				}
			}},
		{control.CmdHistory, "Usage: edge-sync ctl transport.bandwidth.history [--endpoint E] [--window D]\n\nPrints the measurements within the window.\n\nExample:\n  edge-sync ctl transport.bandwidth.history --window 1h",
			func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
				ep := endpointFlag(fs)
				window := fs.Duration("window", 10*time.Minute, "how far back")
				return func(ctx context.Context, x *ctlRun) error {
					if err := x.noArgs(); err != nil {
						return err
					}
					if *window <= 0 {
						return usagef(x.name, "--window must be positive, got %v", *window)
					}
					var h control.HistoryResponse
					return x.call(ctx, control.CmdHistory, control.HistoryRequest{Endpoint: *ep, Window: window.String()}, &h, func(w io.Writer) { printMeasurements(w, h.Measurements) })
				}
			}},
		timelineCommand(),
		{control.CmdSwitch, "Usage: edge-sync ctl transport.switch [--endpoint E] auto|CLASS|MODE\n\nPins an endpoint to a link class (fiber, broadband, mobile, satellite,\nintermittent) or a sync mode (full, full+zstd, delta, delta+zstd,\nstore-and-forward), or back to auto. Prints the resulting status.\n\nExamples:\n  edge-sync ctl transport.switch satellite\n  edge-sync ctl transport.switch --endpoint core store-and-forward\n  edge-sync ctl transport.switch auto",
			func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
				ep := endpointFlag(fs)
				to := fs.String("to", "", "the pin (or give it as the argument)")
				return func(ctx context.Context, x *ctlRun) error {
					pin := *to
					switch {
					case len(x.args) == 1 && pin == "":
						pin = x.args[0]
					case len(x.args) > 1 || (len(x.args) == 1 && pin != ""):
						return usagef(x.name, "give one pin, as --to or as the argument")
					case pin == "":
						return usagef(x.name, "missing pin: auto, a link class or a sync mode")
					}
					if _, err := linkmon.ParsePin(pin); err != nil {
						return usagef(x.name, "%v", err)
					}
					var st agent.LinkStatus
					return x.call(ctx, control.CmdSwitch, control.SwitchRequest{Endpoint: *ep, To: pin}, &st, func(w io.Writer) { printStatus(w, st, time.Now()) })
				}
			}},
		{control.CmdConfig, configUsage, configAction},
		{control.CmdStats, "Usage: edge-sync ctl transport.stats\n\nPrints the outbox's figures and each endpoint's counters.\n\nExample:\n  edge-sync ctl transport.stats --json",
			func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
				return func(ctx context.Context, x *ctlRun) error {
					if err := x.noArgs(); err != nil {
						return err
					}
					var st control.StatsResponse
					return x.call(ctx, control.CmdStats, nil, &st, func(w io.Writer) { printStats(w, st) })
				}
			}},
		{control.CmdNext, nextUsage, nextAction},
		{control.CmdMonitorStart, monitorStartUsage, monitorStartAction},
		{control.CmdMonitorStop, "Usage: edge-sync ctl transport.bandwidth.monitor.stop [--endpoint E]\n\nStops the endpoint's link monitor; the link keeps its last class.\n\nExample:\n  edge-sync ctl transport.bandwidth.monitor.stop --endpoint backup",
			func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
				ep := endpointFlag(fs)
				return func(ctx context.Context, x *ctlRun) error {
					if err := x.noArgs(); err != nil {
						return err
					}
					var r agent.MonitorResult
					return x.call(ctx, control.CmdMonitorStop, control.EndpointRequest{Endpoint: *ep}, &r, func(w io.Writer) {
						fmt.Fprintf(w, "monitor of %s stopped\n", r.Endpoint)
					})
				}
			}},
		{control.CmdVerify, verifyUsage,
			func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
				return func(ctx context.Context, x *ctlRun) error {
					if err := x.noArgs(); err != nil {
						return err
					}
					// Not x.call: the exit code needs the answer decoded
					// with --json too.
					var raw json.RawMessage
					if err := x.c.Call(ctx, control.CmdVerify, nil, &raw); err != nil {
						return fmt.Errorf("%s: %w", control.CmdVerify, err)
					}
					var vr control.VerifyResponse
					if err := json.Unmarshal(raw, &vr); err != nil {
						return fmt.Errorf("%s: decode answer: %w", control.CmdVerify, err)
					}
					if x.json {
						fmt.Fprintf(x.env.Stdout, "%s\n", raw)
					} else {
						printVerify(x.env.Stdout, vr.VerifyReport)
					}
					return verifyExit(vr.VerifyReport)
				}
			}},
		{control.CmdPurge, purgeUsage,
			func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
				all := fs.Bool("all", false, "delete every quarantined op")
				return func(ctx context.Context, x *ctlRun) error {
					if *all == (len(x.args) > 0) {
						return usagef(x.name, "give the IDs of quarantined ops, or --all")
					}
					for _, a := range x.args {
						if _, err := edgesync.ParseOpID(a); err != nil {
							return usagef(x.name, "op ID %q: %v", a, err)
						}
					}
					var pr control.PurgeResponse
					return x.call(ctx, control.CmdPurge, control.PurgeRequest{IDs: x.args, All: *all}, &pr, func(w io.Writer) {
						fmt.Fprintf(w, "purged %d quarantined op(s), %s\n", pr.Ops, units.FormatBytes(pr.Bytes))
					})
				}
			}},
		{"health", "Usage: edge-sync ctl health\n\nAsks the agent whether it is there.\n\nExample:\n  edge-sync ctl --socket /var/lib/edge-sync/agent.sock health",
			func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
				return func(ctx context.Context, x *ctlRun) error {
					if err := x.noArgs(); err != nil {
						return err
					}
					h, err := x.c.Health(ctx)
					if err != nil {
						return fmt.Errorf("health: %w", err)
					}
					if x.json {
						return json.NewEncoder(x.env.Stdout).Encode(h)
					}
					fmt.Fprintf(x.env.Stdout, "%s: agent %s, endpoints %s\n", h.Status, h.Agent, strings.Join(h.Endpoints, ", "))
					return nil
				}
			}},
	}
}

func sendAction(fs *flag.FlagSet, cmd string, priorityRequired bool) func(context.Context, *ctlRun) error {
	var u uploadFlags
	u.register(fs)
	return func(ctx context.Context, x *ctlRun) error {
		res, err := u.upload(ctx, x.env, x.name, cmd, x.c, x.args, priorityRequired)
		if err != nil {
			return err
		}
		if x.json {
			return json.NewEncoder(x.env.Stdout).Encode(res)
		}
		fmt.Fprintln(x.env.Stdout, res.ID)
		return nil
	}
}

const configUsage = `Usage: edge-sync ctl transport.config [--class C [--mode M] [--compression on|off] [--level L] [--chunk-size N] [--interval D] [--concurrency N]]

Without flags, prints the configuration in force. With --class, changes the
sync parameters of that link class until the agent restarts (the file is
not rewritten); every endpoint of that class switches at once.

Examples:
  edge-sync ctl transport.config
  edge-sync ctl transport.config --class satellite --chunk-size 32KiB --interval 10m
  edge-sync ctl transport.config --class mobile --mode delta+zstd --level better`

var levelNames = map[string]int{"off": 0, "fastest": 1, "default": 2, "better": 3, "best": 4}

func configAction(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
	class := fs.String("class", "", "link class to change: fiber, broadband, mobile, satellite, intermittent, unknown")
	mode := fs.String("mode", "", "sync mode: full, full+zstd, delta, delta+zstd, store-and-forward")
	compression := fs.String("compression", "", "on or off")
	level := fs.String("level", "", "compression level: fastest, default, better, best")
	chunk := fs.String("chunk-size", "", "largest chunk, e.g. 256KiB")
	interval := fs.String("interval", "", "batching interval for ordinary data, e.g. 10m (0 = best effort)")
	concurrency := fs.Int("concurrency", 0, "streams kept busy")
	return func(ctx context.Context, x *ctlRun) error {
		if err := x.noArgs(); err != nil {
			return err
		}
		var req control.ConfigRequest
		changes := *mode != "" || *compression != "" || *level != "" || *chunk != "" || *interval != "" || *concurrency != 0
		if changes && *class == "" {
			return usagef(x.name, "--class names the link class whose parameters change")
		}
		if *class != "" {
			if _, err := edgesync.ParseLinkClass(*class); err != nil {
				return usagef(x.name, "--class: %v", err)
			}
			if !changes {
				return usagef(x.name, "--class %s: give at least one of --mode, --compression, --level, --chunk-size, --interval, --concurrency", *class)
			}
			o, err := parseOverride(*mode, *compression, *level, *chunk, *interval, *concurrency)
			if err != nil {
				return usagef(x.name, "%v", err)
			}
			req = control.ConfigRequest{Class: *class, Profile: &o}
		}
		var rc agent.RuntimeConfig
		return x.call(ctx, control.CmdConfig, req, &rc, func(w io.Writer) { printConfig(w, rc) })
	}
}

func parseOverride(mode, compression, level, chunk, interval string, concurrency int) (linkmon.Override, error) {
	var o linkmon.Override
	if mode != "" {
		m, err := edgesync.ParseSyncMode(mode)
		if err != nil {
			return o, fmt.Errorf("--mode: %w", err)
		}
		o.Mode = m
	}
	switch compression {
	case "":
	case "on", "off":
		on := compression == "on"
		o.Compression = &on
	default:
		return o, fmt.Errorf("--compression %q: want on or off", compression)
	}
	if level != "" {
		l, ok := levelNames[level]
		if !ok {
			return o, fmt.Errorf("--level %q: want off, fastest, default, better or best", level)
		}
		o.Level = &l
	}
	if chunk != "" {
		n, err := units.ParseSize(chunk)
		if err != nil || n <= 0 {
			return o, fmt.Errorf("--chunk-size: want a positive size like 64KiB, got %q", chunk)
		}
		o.ChunkSize = int(n)
	}
	if interval != "" {
		d, err := time.ParseDuration(interval)
		if err != nil || d < 0 {
			return o, fmt.Errorf("--interval: want a Go duration like 10m, got %q", interval)
		}
		o.Interval = &d
	}
	if concurrency < 0 {
		return o, fmt.Errorf("--concurrency must be positive, got %d", concurrency)
	}
	o.Concurrency = concurrency
	return o, nil
}

const verifyUsage = `Usage: edge-sync ctl transport.outbox.verify

Reads every op in the running agent's outbox and checks its block
checksums and its SHA-256 against what the producer gave. A damaged op is
quarantined at once (never sent; its bytes are kept). Prints what was
checked and every quarantined op with its ID, key and reason, and exits 1
when the quarantine is not empty. With the agent stopped, use
'edge-sync outbox verify' instead.

Examples:
  edge-sync ctl transport.outbox.verify
  edge-sync ctl transport.outbox.verify --json`

const purgeUsage = `Usage: edge-sync ctl transport.outbox.purge --all | ID...

Deletes quarantined ops for good (their records and damaged bytes), once
you have looked at them: they were never sent, so their producers must put
them again if they still matter.

Examples:
  edge-sync ctl transport.outbox.purge 0190f3c2a1b24c55a0e1f00000000001
  edge-sync ctl transport.outbox.purge --all`

const nextUsage = `Usage: edge-sync ctl transport.bandwidth.sync.next [--endpoint E] [--priority P,...] [--ttl D] [--out FILE|-]
       edge-sync ctl transport.bandwidth.sync.next --ack ID | --release ID

Leases the next waiting op for processing outside the agent (another link,
a courier disk): the sender leaves it alone until you --ack it (done, it is
deleted) or --release it (the sender sends it as usual), or until the lease
ends. The payload is written to --out; the op's metadata is printed.

Examples:
  edge-sync ctl transport.bandwidth.sync.next --priority critical,high --out op.bin
  edge-sync ctl transport.bandwidth.sync.next --ack 0190f3c2a1b24c55a0e1f00000000001`

func nextAction(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
	ep := endpointFlag(fs)
	var prios stringList
	fs.Var(&prios, "priority", "lease only ops of these priorities (comma separated, repeatable)")
	ttl := fs.Duration("ttl", 5*time.Minute, "lease duration")
	out := fs.String("out", "", "write the payload here (- for standard output); without it the payload is not fetched")
	ack := fs.String("ack", "", "acknowledge the leased op ID: it is deleted")
	release := fs.String("release", "", "release the leased op ID: the sender sends it")
	return func(ctx context.Context, x *ctlRun) error {
		if err := x.noArgs(); err != nil {
			return err
		}
		if *ack != "" || *release != "" {
			if *ack != "" && *release != "" {
				return usagef(x.name, "give --ack or --release, not both")
			}
			req := control.NextRequest{Action: "ack", ID: *ack}
			if *release != "" {
				req = control.NextRequest{Action: "release", ID: *release}
			}
			if _, err := edgesync.ParseOpID(req.ID); err != nil {
				return usagef(x.name, "op ID %q: %v", req.ID, err)
			}
			var r control.NextResponse
			return x.call(ctx, control.CmdNext, req, &r, func(w io.Writer) { fmt.Fprintf(w, "%s %s\n", r.Action, r.ID) })
		}
		for _, p := range prios {
			if _, err := edgesync.ParsePriority(p); err != nil {
				return usagef(x.name, "--priority: %v", err)
			}
		}
		if *ttl <= 0 {
			return usagef(x.name, "--ttl must be positive, got %v", *ttl)
		}
		op, body, err := x.c.Lease(ctx, control.NextRequest{Endpoint: *ep, Priorities: prios, TTL: ttl.String()})
		if errors.Is(err, control.ErrNothingWaiting) {
			if x.json {
				fmt.Fprintln(x.env.Stdout, "null")
			} else {
				fmt.Fprintln(x.env.Stderr, "nothing waiting")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", control.CmdNext, err)
		}
		defer body.Close()
		if err := savePayload(x.env, *out, body); err != nil {
			return fmt.Errorf("%s: op %s stays leased until %s: %w", control.CmdNext, op.ID, op.LeaseExpires.Format(time.RFC3339), err)
		}
		meta := x.env.Stdout
		if *out == "-" {
			meta = x.env.Stderr
		}
		if x.json {
			return json.NewEncoder(meta).Encode(op)
		}
		printLeased(meta, op, *out)
		return nil
	}
}

func savePayload(env Env, out string, body io.Reader) error {
	switch out {
	case "":
		return nil
	case "-":
		_, err := io.Copy(env.Stdout, body)
		return err
	}
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

const monitorStartUsage = `Usage: edge-sync ctl transport.bandwidth.monitor.start --endpoint E [--address HOST:PORT [--server-name N]] [monitor flags]

Starts the link monitor of an endpoint. With --address, adds a new endpoint
(another core) at run time: the agent connects to it at once; the addition
lasts until the agent restarts.

Examples:
  edge-sync ctl transport.bandwidth.monitor.start --endpoint core --probe-interval 10s
  edge-sync ctl transport.bandwidth.monitor.start --endpoint backup --address core2.example.net:7443`

func monitorStartAction(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
	ep := endpointFlag(fs)
	addr := fs.String("address", "", "host:port of a new endpoint's core")
	sn := fs.String("server-name", "", "name in the new core's certificate (default: host of --address)")
	var mo control.MonitorOverrides
	fs.StringVar(&mo.ProbeInterval, "probe-interval", "", "bandwidth probe period, e.g. 5s")
	fs.StringVar(&mo.SampleInterval, "sample-interval", "", "light sample period, e.g. 500ms")
	fs.StringVar(&mo.Window, "window", "", "classification window, e.g. 30s")
	return func(ctx context.Context, x *ctlRun) error {
		if err := x.noArgs(); err != nil {
			return err
		}
		if *addr != "" && *ep == "" {
			return usagef(x.name, "--address adds an endpoint: name it with --endpoint")
		}
		req := control.MonitorStartRequest{Endpoint: *ep, Address: *addr, ServerName: *sn}
		if mo != (control.MonitorOverrides{}) {
			req.Monitor = &mo
		}
		var r agent.MonitorResult
		return x.call(ctx, control.CmdMonitorStart, req, &r, func(w io.Writer) {
			if r.Added {
				fmt.Fprintf(w, "endpoint %s added (%s)\n", r.Endpoint, r.Address)
			}
			fmt.Fprintf(w, "monitoring %s: %t\n", r.Endpoint, r.Monitoring)
		})
	}
}

// measurementAction runs a command that answers one measurement of an
// endpoint (transport.quality, transport.bandwidth.measure).
func measurementAction(fs *flag.FlagSet, cmd string) func(context.Context, *ctlRun) error {
	ep := endpointFlag(fs)
	return func(ctx context.Context, x *ctlRun) error {
		if err := x.noArgs(); err != nil {
			return err
		}
		var m linkmon.Measurement
		return x.call(ctx, cmd, control.EndpointRequest{Endpoint: *ep}, &m, func(w io.Writer) { printMeasurements(w, []linkmon.Measurement{m}) })
	}
}
