package cli

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
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

// goVersion is the Go version edge-sync was built with.
func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "unknown"
}

func newVersionCmd(env Env) *cobra.Command {
	return leafCmd("version", "version",
		"Prints the edge-sync version and the Go version it was built with, as --version does.",
		"  edge-sync version\n  edge-sync --version",
		func(context.Context) error {
			fmt.Fprintf(env.Stdout, "edge-sync %s (%s)\n", version(), goVersion())
			return nil
		})
}
