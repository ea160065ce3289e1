package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/jsonhttp"
	"github.com/edge-sync/edge-sync/internal/units"
)

// This file is `core verify` and `core salvage`: checking and rescuing a
// stopped core's bbolt store (docs/integrity.md, "The core's store").

const coreSalvageLong = `Works on a core's bbolt store file while the core is stopped.

verify reads every record (agents, versions, events, the journal,
summaries, partial ops, the applied index) and every object's data
against its SHA-256, and lists what is damaged by agent, key, sequence
number and op ID. It changes nothing. It exits 1 when something is
damaged, 0 when everything checks out.

salvage is for a store the core refuses to start on: it copies every
record that reads back intact (with its sequence numbers and op IDs, so
an op an agent sends again is answered as a duplicate, not stored twice)
into a new file, moves the damaged file aside to STORE.damaged-TIME and
puts the new one in its place, then lists what it could not copy. Then
start the core. A salvage that is killed leaves the damaged file in
place; the next run starts over.

Both refuse while a core has the file open: stop the core first. For
store.backend "jetstream" use NATS's own tools (nats stream info,
nats stream backup / restore).`

const coreSalvageExample = `  edge-sync core verify --config /etc/edge-sync/core.hcl
  edge-sync core verify --file /var/lib/edge-sync/core/core.db --json
  edge-sync core salvage --config /etc/edge-sync/core.hcl`

// coreStoreOpts are the flags of core verify and core salvage.
type coreStoreOpts struct{ fileOpts }

// coreStoreLock is how long verify and salvage wait for a core to let go
// of the file before they say to stop it.
const coreStoreLock = time.Second

// newCoreStoreCmds returns `core verify` and `core salvage`.
func newCoreStoreCmds(env Env) []*cobra.Command {
	var cmds []*cobra.Command
	for _, sub := range []struct {
		name, short, done string
		run               func(Env, string, coreStoreOpts) error
	}{
		{"verify", "check every record of a stopped core's store; exit 1 on damage", "checked", runCoreVerify},
		{"salvage", "copy the intact records of a damaged core store into a new one", "salvaged", runCoreSalvage},
	} {
		var o coreStoreOpts
		name := "core " + sub.name
		sc := leafCmd(name, sub.name+" (--config FILE | --file STORE) [--json]", coreSalvageLong, coreSalvageExample,
			func(context.Context) error {
				if err := o.check(name, "--config (the core's config) or --file (a store file)"); err != nil {
					return err
				}
				path, err := o.store()
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				return sub.run(env, path, o)
			})
		sc.Short = sub.short
		o.register(sc, "core config file: its store is "+sub.done, "core store file (instead of --config)")
		cmds = append(cmds, sc)
	}
	return cmds
}

// store returns the store file of --config or --file.
func (o coreStoreOpts) store() (string, error) {
	if o.file != "" {
		return o.file, nil
	}
	cfg, err := config.LoadCore(o.cfgPath)
	if err != nil {
		return "", err
	}
	if cfg.Store.Backend == config.BackendJetStream {
		return "", fmt.Errorf(`%s has store.backend "jetstream": verify and salvage work on the bbolt file; `+
			"use NATS's own tools for JetStream (nats stream info, nats stream backup / restore)", o.cfgPath)
	}
	return cfg.StorePath(), nil
}

// errStoreDamaged makes a core verify exit 1 when the store holds damage.
var errStoreDamaged = errors.New("the core store holds damaged records")

func runCoreVerify(env Env, path string, o coreStoreOpts) error {
	r, err := core.VerifyFile(path, coreStoreLock)
	if err != nil {
		return coreStoreError("core verify", path, err)
	}
	if o.json {
		r.Damaged = jsonhttp.NonNil(r.Damaged)
		if err := json.NewEncoder(env.Stdout).Encode(r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(env.Stdout, "%s:\n", path)
		printStoreCounts(env.Stdout, "checked", r)
		if len(r.Damaged) > 0 {
			fmt.Fprintf(env.Stdout, "\ndamaged: %d\n", len(r.Damaged))
			printStoreDamage(env.Stdout, r.Damaged)
		} else {
			fmt.Fprintln(env.Stdout, "no damage found")
		}
	}
	if r.OK() {
		return nil
	}
	return fmt.Errorf("%w: %d (listed above); 'edge-sync core salvage' copies the rest into a new store", errStoreDamaged, len(r.Damaged))
}

func runCoreSalvage(env Env, path string, o coreStoreOpts) error {
	r, err := core.SalvageInPlace(path, core.SalvageOptions{LockTimeout: coreStoreLock})
	if err != nil {
		return coreStoreError("core salvage", path, err)
	}
	if o.json {
		r.Damaged = jsonhttp.NonNil(r.Damaged)
		return json.NewEncoder(env.Stdout).Encode(r)
	}
	// The report's Applied counts the entries that read back, Unmarked
	// those of them left out because their op's data was lost.
	copied := r.VerifyReport
	copied.Applied -= r.Unmarked
	printStoreCounts(env.Stdout, "copied", copied)
	fmt.Fprintf(env.Stdout, "into a new %s\nthe damaged file is kept at %s\n", path, r.Aside)
	if r.Rebuilt > 0 {
		fmt.Fprintf(env.Stdout, "%d applied-index entries written again from their ops' versions and events\n", r.Rebuilt)
	}
	if r.Unmarked > 0 {
		fmt.Fprintf(env.Stdout, "%d applied-index entries not copied: their ops' data is damaged (below); "+
			"an agent that still holds such an op has it stored again when it sends it\n", r.Unmarked)
	}
	if r.Dropped > 0 {
		fmt.Fprintf(env.Stdout, "%d partial op(s) not copied: their agents send them again from the start\n", r.Dropped)
	}
	if len(r.Damaged) > 0 {
		fmt.Fprintf(env.Stdout, "\nnot copied, damaged: %d (docs/integrity.md says what each means for the agents)\n", len(r.Damaged))
		printStoreDamage(env.Stdout, r.Damaged)
	}
	cfg := o.cfgPath
	if cfg == "" {
		cfg = "FILE"
	}
	fmt.Fprintf(env.Stdout, "\nnow start the core: edge-sync core --config %s; and check the disk (dmesg, smartctl)\n", cfg)
	return nil
}

// coreStoreError says what to do when verify or salvage cannot work on
// the file at all.
func coreStoreError(cmd, path string, err error) error {
	switch {
	case errors.Is(err, core.ErrLocked):
		return fmt.Errorf("%s: %w", cmd, err)
	case errors.Is(err, core.ErrCorrupt):
		return fmt.Errorf("%s: %s: %w\nbbolt cannot read the file's header or its edge-sync markers, so no record can be read: "+
			"restore the store from a backup, or move it aside and start the core empty (agents send only what they still hold)", cmd, path, err)
	}
	return fmt.Errorf("%s: %s: %w", cmd, path, err)
}

func printStoreCounts(w io.Writer, verb string, r core.VerifyReport) {
	fmt.Fprintf(w, "%s %d agents: %d keys, %d events, %d in the journal, %d summaries, %d applied-index entries, %d partial ops; %s of data\n",
		verb, r.Agents, r.Keys, r.Events, r.Journal, r.Summaries, r.Applied, r.Partials, units.FormatBytes(r.Bytes))
}

func printStoreDamage(w io.Writer, ds []core.Damage) {
	tw := table(w)
	fmt.Fprintln(tw, "AGENT\tBUCKET\tKEY\tSEQ\tOP\tREASON")
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	for _, d := range ds {
		seq := "-"
		if d.Seq != 0 {
			seq = fmt.Sprint(d.Seq)
		}
		key := "-"
		if d.Key != "" {
			key = fmt.Sprintf("%q", d.Key)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", dash(d.Agent), d.Bucket, key, seq, dash(d.OpID), d.Reason)
	}
	tw.Flush()
}

// coreStoreAdvice tells an operator what to do about a core store that
// will not open because it is damaged.
func coreStoreAdvice(cfgPath, path string) string {
	return fmt.Sprintf(`The core's store %s is damaged, so the core will not start on it; it left
the records as they are. They are the only copy of what agents sent (agents
delete theirs once the core acknowledges them). What to do, with the core stopped:
  1. 'edge-sync core verify --config %s' lists what is damaged, by agent,
     key and op, and changes nothing.
  2. 'edge-sync core salvage --config %s' copies every intact record (with
     its op ID, so an op an agent sends again is not stored twice) into a new
     store in its place and keeps the damaged file beside it.
  3. Check the disk (dmesg, smartctl): damage like this comes from the disk.`, path, cfgPath, cfgPath)
}
