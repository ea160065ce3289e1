package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Env is what a command may touch: its standard streams. The context of
// Run ends on SIGINT/SIGTERM.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// command is one top-level command: its name, one line for the list, and
// the constructor of its cobra command (each in its own file).
type command struct {
	name    string
	summary string
	build   func(env Env) *cobra.Command
}

// commands lists the top-level commands in the order --help shows them.
func commands() []command {
	return []command{
		{"agent", "run the edge agent", newAgentCmd},
		{"core", "run the core receiver, or read its store (ls, get, tail)", newCoreCmd},
		{"demo", "run core, link emulator and agent in one process and show the link walk", newDemoCmd},
		{"ctl", "send a control command to a running agent", newCtlCmd},
		{"put", "hand the agent data to send", newPutCmd},
		{"outbox", "check or salvage a stopped agent's outbox file (verify, salvage)", newOutboxCmd},
		{"certs", "create a CA and certificates for core and agents", newCertsCmd},
		{"linksim", "run a shaped UDP relay (rate, delay, loss, outages)", newLinksimCmd},
		{"completion", "print the shell completion script (bash, zsh, fish)", newCompletionCmd},
		{"version", "print the version", newVersionCmd},
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

// Main runs the command line and returns the process exit code: 0, 1 for
// a runtime error, 2 for a usage error.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := Run(ctx, args, Env{Stdin: stdin, Stdout: stdout, Stderr: stderr})
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		help := "Run 'edge-sync --help' or 'edge-sync COMMAND --help' for usage."
		if ue.Cmd != "" {
			help = fmt.Sprintf("Run 'edge-sync %s --help' for its flags and examples.", ue.Cmd)
		}
		fmt.Fprintf(stderr, "edge-sync: %v\n%s\n", err, help)
		return 2
	default:
		fmt.Fprintf(stderr, "edge-sync: %v\n", err)
		return 1
	}
}

// Run runs one edge-sync command line (without the program name). A
// command's --help returns flag.ErrHelp after printing it, as the flag
// package did; the top level's returns nil.
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
	root := newRoot(env)
	var helped *cobra.Command
	help := root.HelpFunc()
	root.SetHelpFunc(func(c *cobra.Command, args []string) {
		helped = c
		help(c, args)
	})
	root.SetArgs(normalizeArgs(root, args))
	err := root.ExecuteContext(ctx)
	if err == nil && helped != nil && helped != root {
		return flag.ErrHelp
	}
	return err
}

const rootExample = `  edge-sync demo                     see the whole idea work in one process
  edge-sync certs --dir ./pki --agent site-1
  edge-sync core --config core.hcl
  edge-sync agent --config agent.hcl
  edge-sync put reading.json --key sensors/pump-3 --priority high
  edge-sync ctl transport.bandwidth.status --watch
  source <(edge-sync completion bash)`

// newRoot builds the command tree. A tree serves one Run: flag values
// live in it.
func newRoot(env Env) *cobra.Command {
	root := &cobra.Command{
		Use:     "edge-sync",
		Short:   "store-and-forward sync for edge sites on bad links",
		Long:    "edge-sync: store-and-forward sync for edge sites on bad links.",
		Example: rootExample,
		Version: fmt.Sprintf("%s (%s)", version(), goVersion()),
		Args:    cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				_ = c.Help() // writes to env.Stdout, which cannot fail usefully here
				return &UsageError{Err: errors.New("no command given")}
			}
			return unknownCommand(c, args[0])
		},
		Annotations:       dispatch,
		SilenceErrors:     true, // Main prints them once
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetIn(env.Stdin)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetVersionTemplate("edge-sync {{.Version}}\n")
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpTemplate(helpTemplate)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &UsageError{Cmd: cmdName(c), Err: err}
	})
	for _, c := range commands() {
		sub := c.build(env)
		sub.Short = c.summary
		root.AddCommand(sub)
	}
	return root
}

// dispatch marks a command that only picks a subcommand: its RunE
// reports what was wrong, and its help shows no usage line of its own.
var dispatch = map[string]string{"dispatch": "true"}

func init() {
	// --help lists the commands in the order commands() gives them.
	cobra.EnableCommandSorting = false
}

// unknownCommand is the usage error for a command name c does not have,
// with the names it has and cobra's suggestion.
func unknownCommand(c *cobra.Command, name string) error {
	var names []string
	for _, s := range c.Commands() {
		if s.IsAvailableCommand() {
			names = append(names, s.Name())
		}
	}
	msg := fmt.Sprintf("unknown command %q (want one of %s)", name, strings.Join(names, ", "))
	if sugg := suggestCommands(c, names, name); len(sugg) > 0 {
		msg += "; did you mean " + strings.Join(sugg, " or ") + "?"
	}
	return &UsageError{Cmd: cmdName(c), Err: errors.New(msg)}
}

// suggestCommands is what name may have meant among names: cobra's
// suggestions (two edits away, or a prefix), or, for a command given
// without its dotted prefix ("status"), every name ending in it.
func suggestCommands(c *cobra.Command, names []string, name string) []string {
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2 // what cobra itself uses; SuggestionsFor does not default it
	}
	sugg := c.SuggestionsFor(name)
	if len(sugg) > 0 || name == "" {
		return sugg
	}
	for _, n := range names {
		if strings.HasSuffix(n, "."+name) {
			sugg = append(sugg, n)
		}
	}
	return sugg
}

// cmdName is c's path without the program name: "ctl transport.stats".
func cmdName(c *cobra.Command) string {
	return strings.TrimPrefix(strings.TrimPrefix(c.CommandPath(), "edge-sync"), " ")
}

// The help layout: the usage line first, then what the command does, its
// examples and its flags; the same for every command.
const helpTemplate = `{{.UsageString}}`

const usageTemplate = `Usage:{{if and .Runnable (not (index .Annotations "dispatch"))}} {{.UseLine}}{{if .HasAvailableSubCommands}}
      {{end}}{{end}}{{if .HasAvailableSubCommands}} {{.CommandPath}} COMMAND [flags] [args]{{end}}
{{with (or .Long .Short)}}
{{. | trimTrailingWhitespaces}}
{{end}}{{if .HasAvailableSubCommands}}
Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }}  {{.Short}}{{end}}{{end}}
{{end}}{{if .HasExample}}
Examples:
{{.Example}}
{{end}}{{if .HasAvailableLocalFlags}}
Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}
{{end}}{{if .HasAvailableInheritedFlags}}
Connection and global flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}
{{end}}{{if .HasAvailableSubCommands}}
Run '{{.CommandPath}} COMMAND --help' for a command's flags and examples.
{{end}}`
