package cli

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Version is set at build time with -ldflags "-X ...cli.Version=v1.2.3";
// otherwise the module version from the build info is used.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func runVersion(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "version", `Usage: edge-sync version

Prints the edge-sync version and the Go version it was built with.`)
	if err := parseFlags(fs, "version", args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version", "unexpected argument %q", fs.Arg(0))
	}
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	fmt.Fprintf(env.Stdout, "edge-sync %s (%s)\n", version(), goVersion)
	return nil
}
