// Package cli implements the edge-sync command line: one file and one
// flag.FlagSet per subcommand, all reachable through Run so that tests can
// drive the real commands without building a binary.
//
// Usage errors (bad flags, missing arguments) are *UsageError and make the
// process exit 2; runtime errors exit 1.
package cli
