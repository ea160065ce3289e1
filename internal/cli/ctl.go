package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

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

const ctlLong = `Sends one command to a running agent's control API and prints the answer
as a table, or as JSON with --json. The commands are those of the API
(docs/control-api.md); the ones that read may be followed with --watch.

The socket is --socket, else the one of --config agent.hcl, else
$EDGE_SYNC_SOCKET, else ` + defaultSocket + `. --addr with --token-file
uses the loopback TCP listener instead. The connection flags go before or
after the command name.`

const ctlExample = `  edge-sync ctl transport.bandwidth.status
  edge-sync ctl transport.bandwidth.status --watch 5s
  edge-sync ctl transport.stats --config /etc/edge-sync/agent.hcl --json
  edge-sync ctl transport.switch satellite --endpoint core
  edge-sync ctl transport.switch auto
  edge-sync ctl transport.config --class satellite --chunk-size 32KiB --interval 10m
  edge-sync ctl transport.bandwidth.sync.queue alarm.json --priority critical --key alarms/pump-3
  edge-sync ctl transport.bandwidth.sync.next --priority critical --out op.bin
  edge-sync ctl transport.bandwidth.sync.next --ack 0190f3c2a1b24c55a0e1f00000000001
  edge-sync ctl transport.bandwidth.monitor.start --endpoint backup --address core2.example.net:7443
  edge-sync ctl health --addr 127.0.0.1:7444 --token-file /etc/edge-sync/token`

// connFlags say how to reach the agent; every ctl command and put take them.
type connFlags struct {
	socket, configPath, addr, tokenFile string
	json                                bool
}

func (c *connFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.socket, "socket", "", "agent control socket (default: from --config, $EDGE_SYNC_SOCKET, or "+defaultSocket+")")
	fs.StringVar(&c.configPath, "config", "", "agent config file to read the socket (or TCP address and token file) from")
	fs.StringVar(&c.addr, "addr", "", "loopback TCP address of the control API (needs --token-file)")
	fs.StringVar(&c.tokenFile, "token-file", "", "bearer token file for --addr")
	fs.BoolVar(&c.json, "json", false, "print the answer as JSON")
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

// ctlAction is what a ctl command does once its flags are parsed.
type ctlAction func(ctx context.Context, x *ctlRun) error

// ctlCommand is one command of ctl: a row of the table ctlCommands
// returns. A new control command is one more row.
type ctlCommand struct {
	name    string
	args    string // the usage line after the name, e.g. "[--endpoint E] auto|CLASS|MODE"
	short   string // one line in ctl's list
	long    string
	example string
	// watch: the command only reads, and --watch repeats it.
	watch bool
	// argWords complete the positional arguments; nil completes files.
	argWords func() []string
	// setup registers the command's flags and returns its action.
	setup func(fs *pflag.FlagSet) ctlAction
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
		return apiErr(cmd, err)
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

// apiErr names the command an API error came from; "is the agent
// running?" says it all by itself.
func apiErr(cmd string, err error) error {
	if errors.Is(err, control.ErrNotRunning) {
		return err
	}
	return fmt.Errorf("%s: %w", cmd, err)
}

func (x *ctlRun) noArgs() error {
	if len(x.args) > 0 {
		return usagef(x.name, "unexpected arguments %q", x.args)
	}
	return nil
}

func newCtlCmd(env Env) *cobra.Command {
	var conn connFlags
	ctl := &cobra.Command{
		Use:         "ctl",
		Long:        ctlLong,
		Annotations: dispatch,
		Example:     ctlExample,
		Args:        cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("ctl", "no command given (want one of %s)", strings.Join(ctlNames(), ", "))
			}
			return unknownCommand(c, args[0])
		},
	}
	conn.register(ctl.PersistentFlags())
	for _, cc := range ctlCommands() {
		ctl.AddCommand(cc.command(env, &conn))
	}
	return ctl
}

func ctlNames() []string {
	var names []string
	for _, c := range ctlCommands() {
		names = append(names, c.name)
	}
	return names
}

// command builds the cobra command of a table row.
func (cc ctlCommand) command(env Env, conn *connFlags) *cobra.Command {
	name := "ctl " + cc.name
	c := &cobra.Command{
		Use:     strings.TrimSpace(cc.name + " " + cc.args),
		Short:   cc.short,
		Long:    cc.long,
		Example: cc.example,
		Args:    cobra.ArbitraryArgs,
	}
	act := cc.setup(c.Flags())
	var every time.Duration
	if cc.watch {
		watchVar(c.Flags(), &every)
	}
	completeCtlFlags(c, conn)
	if cc.argWords != nil {
		c.ValidArgsFunction = func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return cc.argWords(), cobra.ShellCompDirectiveNoFileComp
		}
	}
	c.RunE = func(cmd *cobra.Command, args []string) error {
		cl, err := conn.client(name)
		if err != nil {
			return err
		}
		defer cl.Close()
		x := &ctlRun{env: env, name: name, c: cl, json: conn.json, args: args}
		if every > 0 {
			return watch(cmd.Context(), x, every, act)
		}
		return act(cmd.Context(), x)
	}
	return c
}

func endpointFlag(fs *pflag.FlagSet) *string {
	return fs.String("endpoint", "", "endpoint name; default: the agent's first configured endpoint")
}

func ctlCommands() []ctlCommand {
	return append([]ctlCommand{
		{
			name: control.CmdSend, args: "[--key K] [--priority P] [flags] FILE|-", short: "enqueue FILE|- (same flags as 'edge-sync put')",
			long:    "Enqueues FILE (or standard input) and prints the op's ID.",
			example: "  edge-sync ctl transport.send site.json --key cfg/site --state --priority schema",
			setup:   func(fs *pflag.FlagSet) ctlAction { return sendAction(fs, control.CmdSend, false) },
		},
		{
			name: control.CmdQueue, args: "--priority P [--key K] [flags] FILE|-", short: "enqueue FILE|- at a priority (--priority required)",
			long:    "Enqueues FILE (or standard input) at a priority and prints the op's ID.",
			example: "  edge-sync ctl transport.bandwidth.sync.queue alarm.json --priority critical --key alarms/pump-3",
			setup:   func(fs *pflag.FlagSet) ctlAction { return sendAction(fs, control.CmdQueue, true) },
		},
		{
			name: control.CmdQuality, args: "[--endpoint E]", short: "latest link figures of an endpoint", watch: true,
			long:    "Prints the latest link figures of an endpoint.",
			example: "  edge-sync ctl transport.quality --endpoint core",
			setup:   func(fs *pflag.FlagSet) ctlAction { return measurementAction(fs, control.CmdQuality) },
		},
		{
			name: control.CmdMeasure, args: "[--endpoint E]", short: "measure an endpoint now",
			long:    "Measures the link now (needs the endpoint's link monitor).",
			example: "  edge-sync ctl transport.bandwidth.measure",
			setup:   func(fs *pflag.FlagSet) ctlAction { return measurementAction(fs, control.CmdMeasure) },
		},
		{
			name: control.CmdStatus, args: "[--endpoint E] [--watch[=INTERVAL]]", watch: true,
			short: "class, figures, why, pin, parameters, transfers in flight, backlog, drain ETA",
			long: `Explains the link: class and the figures behind it, since when and why,
the operator's pin, the sync parameters in force, why the agent cannot
connect if it cannot, the transfers in flight with their progress and
ETA, the backlog per priority and the time to drain it.`,
			example: "  edge-sync ctl transport.bandwidth.status --endpoint core\n  edge-sync ctl transport.bandwidth.status --watch 5s",
			setup: func(fs *pflag.FlagSet) ctlAction {
				return endpointAction(fs, control.CmdStatus, func(w io.Writer, st agent.LinkStatus) { printStatus(w, st, time.Now()) })
			},
		},
		{
			name: control.CmdHistory, args: "[--endpoint E] [--window D]", short: "measurements within --window", watch: true,
			long:    "Prints the measurements within the window.",
			example: "  edge-sync ctl transport.bandwidth.history --window 1h",
			setup: func(fs *pflag.FlagSet) ctlAction {
				return windowAction(fs, "how far back", func(ctx context.Context, x *ctlRun, endpoint string, window time.Duration) error {
					var h control.HistoryResponse
					return x.call(ctx, control.CmdHistory, control.HistoryRequest{Endpoint: endpoint, Window: window.String()}, &h, func(w io.Writer) { printMeasurements(w, h.Measurements) })
				})
			},
		},
		timelineCommand(),
		{
			name: control.CmdSwitch, args: "[--endpoint E] auto|CLASS|MODE", short: "pin an endpoint: auto, a link class or a sync mode",
			long: `Pins an endpoint to a link class (` + strings.Join(classNames()[:5], ", ") + `)
or a sync mode (` + strings.Join(modeNames(), ", ") + `),
or back to auto. Prints the resulting status.`,
			example:  "  edge-sync ctl transport.switch satellite\n  edge-sync ctl transport.switch store-and-forward --endpoint core\n  edge-sync ctl transport.switch auto",
			argWords: pinNames,
			setup: func(fs *pflag.FlagSet) ctlAction {
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
			},
		},
		{
			name: control.CmdConfig, args: "[--class C [--mode M] [--compression on|off] [--level L] [--chunk-size SIZE] [--interval D] [--concurrency N]]",
			short: "show the configuration, or change a class's parameters", watch: true,
			long: `Without flags, prints the configuration in force. With --class, changes the
sync parameters of that link class until the agent restarts (the file is
not rewritten); every endpoint of that class switches at once.`,
			example: "  edge-sync ctl transport.config\n  edge-sync ctl transport.config --class satellite --chunk-size 32KiB --interval 10m\n  edge-sync ctl transport.config --class mobile --mode delta+zstd --level better",
			setup:   configAction,
		},
		{
			name: control.CmdStats, short: "counters per endpoint, priority and mode; outbox figures", watch: true,
			long:    "Prints the outbox's figures and each endpoint's counters.",
			example: "  edge-sync ctl transport.stats --json\n  edge-sync ctl transport.stats --watch",
			setup: func(fs *pflag.FlagSet) ctlAction {
				return func(ctx context.Context, x *ctlRun) error {
					if err := x.noArgs(); err != nil {
						return err
					}
					var st control.StatsResponse
					return x.call(ctx, control.CmdStats, nil, &st, func(w io.Writer) { printStats(w, st) })
				}
			},
		},
		{
			name: control.CmdNext, args: "[--endpoint E] [--priority P,...] [--ttl D] [--out FILE|-] | --ack ID | --release ID",
			short: "lease the next op (--out FILE), or --ack/--release ID",
			long: `Leases the next waiting op for processing outside the agent (another link,
a courier disk): the sender leaves it alone until you --ack it (done, it is
deleted) or --release it (the sender sends it as usual), or until the lease
ends. The payload is written to --out; the op's metadata is printed.`,
			example: "  edge-sync ctl transport.bandwidth.sync.next --priority critical,high --out op.bin\n  edge-sync ctl transport.bandwidth.sync.next --ack 0190f3c2a1b24c55a0e1f00000000001",
			setup:   nextAction,
		},
		{
			name: control.CmdMonitorStart, args: "--endpoint E [--address HOST:PORT [--server-name N]] [monitor flags]",
			short: "start monitoring an endpoint; --address adds a new one",
			long: `Starts the link monitor of an endpoint. With --address, adds a new endpoint
(another core) at run time: the agent connects to it at once; the addition
lasts until the agent restarts. An added endpoint never becomes the default
of put and status: that stays the first configured one.`,
			example: "  edge-sync ctl transport.bandwidth.monitor.start --endpoint core --probe-interval 10s\n  edge-sync ctl transport.bandwidth.monitor.start --endpoint backup --address core2.example.net:7443",
			setup:   monitorStartAction,
		},
		{
			name: control.CmdMonitorStop, args: "[--endpoint E]", short: "stop monitoring an endpoint",
			long:    "Stops the endpoint's link monitor; the link keeps its last class.",
			example: "  edge-sync ctl transport.bandwidth.monitor.stop --endpoint backup",
			setup: func(fs *pflag.FlagSet) ctlAction {
				return endpointAction(fs, control.CmdMonitorStop, func(w io.Writer, r agent.MonitorResult) {
					fmt.Fprintf(w, "monitor of %s stopped\n", r.Endpoint)
				})
			},
		},
		{
			name: control.CmdVerify, short: "read and check every op now; quarantine damaged ones",
			long: `Reads every op in the running agent's outbox and checks its block
checksums and its SHA-256 against what the producer gave. A damaged op is
quarantined at once (never sent; its bytes are kept). Prints what was
checked and every quarantined op with its ID, key and reason, and exits 1
when the quarantine is not empty. With the agent stopped, use
'edge-sync outbox verify' instead.`,
			example: "  edge-sync ctl transport.outbox.verify\n  edge-sync ctl transport.outbox.verify --json",
			setup:   verifyAction,
		},
		{
			name: control.CmdPurge, args: "--all | ID...", short: "delete quarantined ops: --all or IDs",
			long: `Deletes quarantined ops for good (their records and damaged bytes), once
you have looked at them: they were never sent, so their producers must put
them again if they still matter.`,
			example: "  edge-sync ctl transport.outbox.purge 0190f3c2a1b24c55a0e1f00000000001\n  edge-sync ctl transport.outbox.purge --all",
			setup:   purgeAction,
		},
		{
			name: "health", short: "is the agent there", watch: true,
			long:    "Asks the agent whether it is there.",
			example: "  edge-sync ctl health --socket /var/lib/edge-sync/agent.sock",
			setup: func(fs *pflag.FlagSet) ctlAction {
				return func(ctx context.Context, x *ctlRun) error {
					if err := x.noArgs(); err != nil {
						return err
					}
					h, err := x.c.Health(ctx)
					if err != nil {
						return apiErr("health", err)
					}
					if x.json {
						return json.NewEncoder(x.env.Stdout).Encode(h)
					}
					fmt.Fprintf(x.env.Stdout, "%s: agent %s, endpoints %s\n", h.Status, h.Agent, strings.Join(h.Endpoints, ", "))
					return nil
				}
			},
		},
	}, budgetCommands()...)
}

func sendAction(fs *pflag.FlagSet, cmd string, priorityRequired bool) ctlAction {
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

func verifyAction(fs *pflag.FlagSet) ctlAction {
	return func(ctx context.Context, x *ctlRun) error {
		if err := x.noArgs(); err != nil {
			return err
		}
		// Not x.call: the exit code needs the answer decoded with --json
		// too.
		var raw json.RawMessage
		if err := x.c.Call(ctx, control.CmdVerify, nil, &raw); err != nil {
			return apiErr(control.CmdVerify, err)
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
}

func purgeAction(fs *pflag.FlagSet) ctlAction {
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
}

// measurementAction runs a command that answers one measurement of an
// endpoint (transport.quality, transport.bandwidth.measure).
func measurementAction(fs *pflag.FlagSet, cmd string) ctlAction {
	return endpointAction(fs, cmd, func(w io.Writer, m linkmon.Measurement) { printMeasurements(w, []linkmon.Measurement{m}) })
}

// endpointAction runs cmd, which takes --endpoint and no arguments, and
// prints its answer, a T, with table (or the answer's JSON with --json).
func endpointAction[T any](fs *pflag.FlagSet, cmd string, table func(w io.Writer, answer T)) ctlAction {
	ep := endpointFlag(fs)
	return func(ctx context.Context, x *ctlRun) error {
		if err := x.noArgs(); err != nil {
			return err
		}
		var answer T
		return x.call(ctx, cmd, control.EndpointRequest{Endpoint: *ep}, &answer, func(w io.Writer) { table(w, answer) })
	}
}

// windowAction is the action of a command that takes --endpoint and a
// positive --window (help says how far back it reaches) and no
// argument; call asks the agent.
func windowAction(fs *pflag.FlagSet, help string, call func(ctx context.Context, x *ctlRun, endpoint string, window time.Duration) error) ctlAction {
	ep := endpointFlag(fs)
	var window time.Duration
	durationVar(fs, &window, "window", 10*time.Minute, help)
	return func(ctx context.Context, x *ctlRun) error {
		if err := x.noArgs(); err != nil {
			return err
		}
		if window <= 0 {
			return usagef(x.name, "--window must be positive, got %s", units.FormatDuration(window))
		}
		return call(ctx, x, *ep, window)
	}
}

// completeCtlFlags completes the flags ctl commands share by name: the
// agent's endpoints (asked of the agent, if it answers within a second),
// priorities, link classes, modes and levels.
func completeCtlFlags(c *cobra.Command, conn *connFlags) {
	words := map[string][]string{
		"priority":    priorityNames(),
		"class":       classNames(),
		"mode":        modeNames(),
		"level":       {"off", "fastest", "default", "better", "best"},
		"compression": {"on", "off"},
	}
	for flag, ws := range words {
		if c.Flags().Lookup(flag) != nil {
			completeFlag(c, flag, complete(ws...))
		}
	}
	if c.Flags().Lookup("endpoint") != nil {
		completeFlag(c, "endpoint", func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return agentEndpoints(cmd.Context(), conn), cobra.ShellCompDirectiveNoFileComp
		})
	}
}

// agentEndpoints asks the agent for its endpoints, for completion; it
// offers nothing when no agent answers.
func agentEndpoints(ctx context.Context, conn *connFlags) []string {
	if ctx == nil {
		ctx = context.Background()
	}
	cl, err := conn.client("complete")
	if err != nil {
		return nil
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	h, err := cl.Health(ctx)
	if err != nil {
		return nil
	}
	return h.Endpoints
}
