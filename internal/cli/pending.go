package cli

import (
	"context"
	"errors"
)

// errNotBuilt marks a subcommand whose issue is still open. Each function
// here moves to its own file when its issue lands.
var errNotBuilt = errors.New("not built yet in this version of edge-sync")

func runCtl(ctx context.Context, env Env, args []string) error { return notBuilt("ctl") }
func runPut(ctx context.Context, env Env, args []string) error { return notBuilt("put") }

func notBuilt(name string) error { return errors.New(name + ": " + errNotBuilt.Error()) }
