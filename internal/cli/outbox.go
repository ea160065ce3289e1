package cli

import (
	"context"

	"github.com/spf13/cobra"

	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/atomicfile"
	"github.com/edge-sync/edge-sync/internal/jsonhttp"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/outbox"
)

const outboxLong = `Works on an agent's outbox file while the agent is stopped.

verify reads every op, checks its block checksums and its SHA-256 against
what the producer gave, and lists the damaged ops and those quarantined
earlier with their IDs, keys and reasons. It changes nothing (the agent
quarantines damaged ops itself when it reads them). It exits 1 when
something is damaged, 0 when everything checks out. While the agent runs,
use 'edge-sync ctl transport.outbox.verify'.

salvage is for a file the agent refuses to start on (bbolt cannot read a
page of it): it copies every op that reads back intact, with its ID, into
a new outbox file, moves the damaged file aside to OUTBOX.damaged-TIME and
puts the new one in its place, then lists the ops it could not copy.`

const outboxExample = `  edge-sync outbox verify --config /etc/edge-sync/agent.hcl
  edge-sync outbox verify --file /var/lib/edge-sync/outbox.db --json
  edge-sync outbox salvage --config /etc/edge-sync/agent.hcl`

// outboxOpts are the flags of an outbox subcommand.
type outboxOpts struct{ fileOpts }

func newOutboxCmd(env Env) *cobra.Command {
	c := &cobra.Command{
		Use:         "outbox",
		Long:        outboxLong,
		Annotations: dispatch,
		Example:     outboxExample,
		Args:        cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				_ = c.Help() // to env.Stdout; the usage error says the rest
				return usagef("outbox", "no subcommand given (want verify or salvage)")
			}
			return unknownCommand(c, args[0])
		},
	}
	for _, sub := range []struct {
		name, short, done string
		run               func(context.Context, Env, outboxOpts) error
	}{
		{"verify", "check every op of a stopped agent's outbox; exit 1 on damage", "checked", runOutboxVerify},
		{"salvage", "copy the intact ops of a damaged outbox file into a new one", "salvaged", runOutboxSalvage},
	} {
		var o outboxOpts
		sc := leafCmd("outbox "+sub.name, sub.name+" (--config FILE | --file OUTBOX) [--json]", outboxLong, outboxExample,
			func(ctx context.Context) error {
				if err := o.check("outbox "+sub.name, "--config (the agent's config) or --file (an outbox file)"); err != nil {
					return err
				}
				return sub.run(ctx, env, o)
			})
		sc.Short = sub.short
		o.register(sc, "agent config file: its outbox is "+sub.done, "outbox file (instead of --config)")
		c.AddCommand(sc)
	}
	return c
}

func runOutboxVerify(_ context.Context, env Env, o outboxOpts) error {
	path, opts, err := o.outbox()
	if err != nil {
		return err
	}
	asJSON := o.json
	r, err := outbox.VerifyFile(path, opts)
	if errors.Is(err, outbox.ErrLocked) {
		return fmt.Errorf("outbox verify: %w: the agent has %s open; run 'edge-sync ctl transport.outbox.verify' instead", err, path)
	}
	if asJSON {
		r.Damaged, r.Quarantined = jsonhttp.NonNil(r.Damaged), jsonhttp.NonNil(r.Quarantined)
		if jerr := json.NewEncoder(env.Stdout).Encode(r); jerr != nil {
			return jerr
		}
	} else {
		fmt.Fprintf(env.Stdout, "%s:\n", path)
		printVerify(env.Stdout, r)
	}
	if err != nil {
		return fmt.Errorf("outbox verify: %w\n%s", err, corruptAdvice(path))
	}
	return verifyExit(r)
}

// outbox returns the outbox file of --config or --file and the options
// the agent opens it with.
func (o outboxOpts) outbox() (string, outbox.Options, error) {
	opts := outbox.Options{LockTimeout: time.Second}
	if o.file != "" {
		return o.file, opts, nil
	}
	cfg, err := config.LoadAgent(o.cfgPath)
	if err != nil {
		return "", opts, err
	}
	opts.MaxOps, opts.MaxBytes, opts.MaxOpBytes, opts.DefaultTTL = cfg.Outbox.MaxOps, cfg.Outbox.MaxBytes, cfg.Outbox.MaxOpBytes, cfg.Outbox.DefaultTTL
	return cfg.OutboxPath(), opts, nil
}

func runOutboxSalvage(ctx context.Context, env Env, o outboxOpts) error {
	path, opts, err := o.outbox()
	if err != nil {
		return err
	}
	asJSON := o.json
	// The copy is built beside the file and takes its place only once it
	// is complete: a salvage that fails or is killed leaves the damaged
	// file where it was. A leftover copy of an earlier run is ours.
	tmp := path + ".salvage"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("outbox salvage: %w", err)
	}
	r, err := outbox.Salvage(ctx, path, tmp, opts)
	if err != nil {
		_ = os.Remove(tmp)
		if errors.Is(err, outbox.ErrLocked) {
			return fmt.Errorf("outbox salvage: %w: stop the agent first", err)
		}
		return fmt.Errorf("outbox salvage: %w", err)
	}
	aside := path + ".damaged-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(path, aside); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("outbox salvage: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("outbox salvage: the damaged file is at %s, the copy at %s: %w", aside, tmp, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("outbox salvage: %w", err)
	}
	if asJSON {
		r.Lost, r.Quarantined = jsonhttp.NonNil(r.Lost), jsonhttp.NonNil(r.Quarantined)
		return json.NewEncoder(env.Stdout).Encode(r)
	}
	fmt.Fprintf(env.Stdout, "copied %d ops (%s) into a new %s", r.Copied, units.FormatBytes(r.Bytes), path)
	if r.Unchecked > 0 {
		fmt.Fprintf(env.Stdout, " (%d stored before checksums, copied as read)", r.Unchecked)
	}
	fmt.Fprintf(env.Stdout, "\nthe damaged file is kept at %s\n", aside)
	if len(r.Lost) > 0 {
		fmt.Fprintf(env.Stdout, "\nnot copied, damaged: %d op(s); ask their producers to put them again\n", len(r.Lost))
		printDamage(env.Stdout, r.Lost)
	}
	if r.Unlisted {
		fmt.Fprintln(env.Stdout, "\nbbolt could not read the whole list of ops: ops after the damaged page are lost and cannot be named")
	}
	if len(r.Quarantined) > 0 {
		fmt.Fprintf(env.Stdout, "\nleft in the damaged file's quarantine: %d op(s)\n", len(r.Quarantined))
		printDamage(env.Stdout, r.Quarantined)
	}
	return nil
}

// corruptAdvice tells an operator what to do about an outbox file whose
// bbolt structure is damaged.
func corruptAdvice(path string) string {
	return fmt.Sprintf(`The outbox file %s is damaged where bbolt itself cannot read it, so the agent
will not start on it and leaves it as it is. What to do:
  1. 'edge-sync outbox verify --file %s' lists the ops it can still read
     and which are damaged.
  2. 'edge-sync outbox salvage --file %s' copies every intact op (with its
     ID, so the core does not store it twice) into a new outbox in its
     place and moves the damaged file aside; or move the file aside
     yourself and the agent starts with an empty outbox. Ops not copied
     are never sent: ask their producers to put them again.
  3. Check the disk (dmesg, smartctl): damage like this comes from the disk.`, path, path, path)
}

// printVerify renders a verify report.
func printVerify(w io.Writer, r outbox.VerifyReport) {
	fmt.Fprintf(w, "checked %d ops, %s", r.Ops, units.FormatBytes(r.Bytes))
	if r.Unchecked > 0 {
		fmt.Fprintf(w, " (%d stored before checksums: read, nothing to check them against)", r.Unchecked)
	}
	fmt.Fprintln(w)
	if len(r.Damaged) > 0 {
		fmt.Fprintf(w, "\ndamaged: %d op(s)\n", len(r.Damaged))
		printDamage(w, r.Damaged)
	}
	if len(r.Quarantined) > 0 {
		fmt.Fprintf(w, "\nin quarantine (never sent; 'edge-sync ctl transport.outbox.purge' deletes them): %d op(s)\n", len(r.Quarantined))
		printDamage(w, r.Quarantined)
	}
	if r.OK() {
		fmt.Fprintln(w, "no damage found")
	}
}

func printDamage(w io.Writer, ds []outbox.Damage) {
	tw := table(w)
	fmt.Fprintln(tw, "ID\tENDPOINT\tKEY\tPRIORITY\tSIZE\tQUARANTINED\tREASON")
	for _, d := range ds {
		at := "-"
		if !d.At.IsZero() {
			at = d.At.Local().Format("2006-01-02 15:04:05")
		}
		fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%s\t%s\t%s\n", d.ID, d.Endpoint, d.Key, d.Priority, units.FormatBytes(d.Size), at, d.Reason)
	}
	tw.Flush()
}

// errDamaged makes a verify exit 1 when the outbox holds damaged ops.
var errDamaged = errors.New("the outbox holds damaged ops")

func verifyExit(r outbox.VerifyReport) error {
	if r.OK() {
		return nil
	}
	return fmt.Errorf("%w: %d found now, %d in quarantine (listed above)", errDamaged, len(r.Damaged), len(r.Quarantined))
}
