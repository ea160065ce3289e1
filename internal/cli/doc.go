// Package cli implements the edge-sync command line on cobra
// (github.com/spf13/cobra): one file per command, each building its
// cobra.Command, all reachable through Run so that tests drive the real
// commands without building a binary.
//
// # Why cobra
//
// Cobra is the command line operators already know from kubectl, docker,
// gh, helm and hugo: GNU flags (--flag, -f, flags before or after the
// arguments), `help COMMAND`, --version, and completion scripts for bash,
// zsh and fish with dynamic completion (our ctl command names, priorities,
// link classes, sync modes, pins, and the running agent's endpoints).
// kong builds a similar CLI from struct tags but needs a third-party
// package for completion; urfave/cli stops parsing flags at the first
// argument unless told otherwise per command and has no dynamic flag
// completion in its stable line. Cobra's pflag also keeps the flag
// package's FlagSet methods, so a ctl command's flags read as before.
//
// # Conventions
//
//   - Usage errors (bad flags, missing or extra arguments) are
//     *UsageError and make the process exit 2; runtime errors exit 1;
//     a command's --help returns flag.ErrHelp and exits 0.
//   - Flags may follow positional arguments: `core get KEY --agent A -o F`
//     and `put - --key k --priority high` work. Long flags written with
//     one dash, as the flag package allowed (`-config FILE`), still work
//     (normalizeArgs).
//   - ctl's commands are rows of one table (ctlCommands): a new control
//     command is one row with its flags and action; the commands that
//     only read take --watch.
//   - Sizes and durations in flags and tables go through internal/units;
//     priorities, classes and modes are listed from the root package, in
//     its order.
package cli
