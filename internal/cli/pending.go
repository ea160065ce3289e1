package cli

import (
	"context"
	"errors"
)

// errNotBuilt marks a subcommand whose issue is still open. Each function
// here moves to its own file when its issue lands.
var errNotBuilt = errors.New("not built yet in this version of edge-sync")

func runAgent(ctx context.Context, env Env, args []string) error { return notBuilt("agent") }
func runCore(ctx context.Context, env Env, args []string) error  { return notBuilt("core") }
func runDemo(ctx context.Context, env Env, args []string) error  { return notBuilt("demo") }
func runCtl(ctx context.Context, env Env, args []string) error   { return notBuilt("ctl") }
func runPut(ctx context.Context, env Env, args []string) error   { return notBuilt("put") }

func notBuilt(name string) error { return errors.New(name + ": " + errNotBuilt.Error()) }
