package cli

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linkmon"
)

// This file holds what the commands' flags share: the arguments' clean-up
// before cobra parses them, flag types for durations and lists, and the
// completions of the project's names.

// normalizeArgs keeps the command lines the flag package read working
// under pflag's GNU syntax: a long flag with one dash ("-config FILE",
// "-json") gets its second dash, and "--watch 5s" becomes "--watch=5s"
// (--watch alone means every 2 s). It walks the command tree as cobra
// will, to know each flag and whether it takes a value.
func normalizeArgs(root *cobra.Command, args []string) []string {
	out := make([]string, 0, len(args))
	cmd, descending := root, true
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			if descending {
				if sub := subcommand(cmd, a); sub != nil {
					cmd = sub
				} else {
					descending = false
				}
			}
			out = append(out, a)
			continue
		}
		long := strings.HasPrefix(a, "--")
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var f *pflag.Flag
		switch {
		case long:
			f = lookupFlag(cmd, name, false)
		case len(name) == 1:
			f = lookupFlag(cmd, name, true)
		default: // -name: a long flag with one dash, or a cluster of shorthands
			f = lookupFlag(cmd, name, false)
			if f != nil || name == "help" || name == "version" || lookupFlag(cmd, name[:1], true) == nil {
				a = "-" + a // an unknown one is reported by its name
			}
		}
		out = append(out, a)
		if f == nil || hasValue {
			continue
		}
		switch {
		case f.NoOptDefVal == "":
			if i+1 < len(args) { // the flag's value, whatever it looks like
				i++
				out = append(out, args[i])
			}
		case f.Value.Type() == watchType && i+1 < len(args) && intervalRe.MatchString(args[i+1]):
			i++
			out[len(out)-1] += "=" + args[i]
		}
	}
	return out
}

// intervalRe matches what may follow --watch as its interval: seconds
// ("5", "0.5") or a duration ("5s", "1m"); never an op ID, a pin or a file.
var intervalRe = regexp.MustCompile(`^[0-9]{1,4}(\.[0-9]+)?(ms|s|m|h)?$`)

func subcommand(c *cobra.Command, name string) *cobra.Command {
	for _, s := range c.Commands() {
		if s.Name() == name || s.HasAlias(name) {
			return s
		}
	}
	return nil
}

// lookupFlag finds a flag of c or one it inherits, by name or shorthand.
func lookupFlag(c *cobra.Command, name string, short bool) *pflag.Flag {
	for ; c != nil; c = c.Parent() {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			var f *pflag.Flag
			if short {
				f = fs.ShorthandLookup(name)
			} else {
				f = fs.Lookup(name)
			}
			if f != nil {
				return f
			}
		}
	}
	return nil
}

// durationFlag is a duration flag read by units.ParseDuration ("10m",
// "2d").
type durationFlag time.Duration

func (d *durationFlag) String() string { return units.FormatDuration(time.Duration(*d)) }

func (d *durationFlag) Set(s string) error {
	v, err := units.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationFlag(v)
	return nil
}

func (d *durationFlag) Type() string { return "duration" }

// durationVar defines a duration flag on fs.
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var((*durationFlag)(p), name, usage)
}

// stringList is a repeatable flag; each use may also hold a comma list.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s = append(*s, p)
		}
	}
	return nil
}

func (s *stringList) Type() string { return "list" }

// names renders the String of each value, for help texts and completion.
func names[T interface{ String() string }](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}

// The project's names, in their one order (help texts, tables and
// completion agree).
func priorityNames() []string { return names(edgesync.Priorities()) }
func classNames() []string    { return names(edgesync.LinkClasses()) }
func modeNames() []string     { return names(edgesync.SyncModes()) }

// pinNames are what transport.switch accepts.
func pinNames() []string {
	out := []string{linkmon.Pin{}.String()}
	for _, c := range edgesync.LinkClasses() {
		if c != edgesync.Unknown {
			out = append(out, c.String())
		}
	}
	return append(out, modeNames()...)
}

// priorityList is the priorities as help texts write them.
func priorityList() string { return strings.Join(priorityNames(), ", ") }

// complete returns a completion function offering words.
func complete(words ...string) cobra.CompletionFunc {
	return cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp)
}

// completeFlag registers the completion of a flag of c; a flag c does
// not have is a bug of this package, caught by the help tests.
func completeFlag(c *cobra.Command, flag string, f cobra.CompletionFunc) {
	if err := c.RegisterFlagCompletionFunc(flag, f); err != nil {
		panic(err)
	}
}

// leafCmd builds a command that takes no positional arguments: use, long
// and example are its help; name is how usage errors call it ("core ls");
// run does its work with the command's context once the flags are parsed.
func leafCmd(name, use, long, example string, run func(ctx context.Context) error) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Long:    long,
		Example: example,
		Args:    noArgs(name),
		RunE:    func(c *cobra.Command, _ []string) error { return run(c.Context()) },
	}
}

// noArgs refuses positional arguments with a usage error.
func noArgs(name string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef(name, "unexpected argument %q", args[0])
		}
		return nil
	}
}

// hclFiles completes config file names.
func hclFiles(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	return []cobra.Completion{"hcl"}, cobra.ShellCompDirectiveFilterFileExt
}
