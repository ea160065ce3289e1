package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Env is what a subcommand may touch: its arguments, standard streams and a
// context that ends on SIGINT/SIGTERM.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env Env, args []string) error
}

// commands lists the subcommands in the order --help shows them.
func commands() []command {
	return []command{
		{"agent", "run the edge agent", runAgent},
		{"core", "run the core receiver, or read its store (ls, get, tail)", runCore},
		{"demo", "run core, link emulator and agent in one process and show the link walk", runDemo},
		{"ctl", "send a control command to a running agent", runCtl},
		{"put", "hand the agent data to send", runPut},
		{"outbox", "check or salvage a stopped agent's outbox file (verify, salvage)", runOutbox},
		{"certs", "create a CA and certificates for core and agents", runCerts},
		{"linksim", "run a shaped UDP relay (rate, delay, loss, outages)", runLinksim},
		{"version", "print the version", runVersion},
	}
}

// UsageError is a mistake in how a command was called. It makes the process
// exit 2 and is printed with a hint to --help.
type UsageError struct {
	Cmd string
	Err error
}

func (e *UsageError) Error() string {
	if e.Cmd == "" {
		return e.Err.Error()
	}
	return e.Cmd + ": " + e.Err.Error()
}

func (e *UsageError) Unwrap() error { return e.Err }

func usagef(cmd, format string, args ...any) error {
	return &UsageError{Cmd: cmd, Err: fmt.Errorf(format, args...)}
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := Run(ctx, args, Env{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(*UsageError)):
		fmt.Fprintf(stderr, "edge-sync: %v\nRun 'edge-sync --help' or 'edge-sync COMMAND --help' for usage.\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "edge-sync: %v\n", err)
		return 1
	}
}

// Run runs one edge-sync command line (without the program name).
func Run(ctx context.Context, args []string, env Env) error {
	if env.Stdin == nil {
		env.Stdin = strings.NewReader("")
	}
	if env.Stdout == nil {
		env.Stdout = io.Discard
	}
	if env.Stderr == nil {
		env.Stderr = io.Discard
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(env.Stdout)
		if len(args) == 0 {
			return &UsageError{Err: errors.New("no command given")}
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, env, args[1:])
		}
	}
	return usagef("", "unknown command %q (want one of %s)", args[0], strings.Join(commandNames(), ", "))
}

func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	sort.Strings(names)
	return names
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `edge-sync: store-and-forward sync for edge sites on bad links.

Usage:
  edge-sync COMMAND [flags] [args]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s  %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Quick start:
  edge-sync demo                     see the whole idea work in one process
  edge-sync certs --dir ./pki --agent site-1
  edge-sync core --config core.hcl
  edge-sync agent --config agent.hcl
  edge-sync put --key sensors/pump-3 --priority high reading.json
  edge-sync ctl transport.bandwidth.status

Run 'edge-sync COMMAND --help' for a command's flags and examples.
`)
}

// newFlagSet returns a FlagSet that writes its usage to env.Stdout and
// returns errors instead of exiting. usage is printed above the flags.
func newFlagSet(env Env, name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet("edge-sync "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stdout)
	fs.Usage = func() {
		fmt.Fprintln(env.Stdout, strings.TrimSpace(usage))
		fmt.Fprintln(env.Stdout, "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args and turns flag errors into usage errors. It
// returns flag.ErrHelp unchanged for -h and --help.
func parseFlags(fs *flag.FlagSet, name string, args []string) error {
	// Errors are reported once, by Main; usage is printed once, here.
	out, usage := fs.Output(), fs.Usage
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.SetOutput(out)
	fs.Usage = usage
	if errors.Is(err, flag.ErrHelp) {
		fs.Usage()
		return err
	}
	if err != nil {
		return &UsageError{Cmd: name, Err: err}
	}
	return nil
}
