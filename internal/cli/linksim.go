package cli

import (
	"context"

	"github.com/spf13/cobra"

	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linksim"
)

func linksimUsage() string {
	var b strings.Builder
	b.WriteString(`Runs a UDP relay that shapes traffic like a real link: rate with a bounded
queue, delay, jitter, loss, outages. Put it between an agent and core:
point the agent at --listen and --target at core. Up is client→target,
down is target→client. A line of counters is printed every --interval.

Profiles (down/up rate, RTT, loss, source):
`)
	for _, p := range linksim.Profiles() {
		fmt.Fprintf(&b, "  %-20s %s\n", p.Name, p.Summary)
	}
	b.WriteString(`
A schedule file has one "DURATION PROFILE" step per line, '#' starts a
comment:
  30s satellite-geo
  10s intermittent`)
	return b.String()
}

const linksimExample = `  edge-sync linksim --listen 127.0.0.1:4434 --target 127.0.0.1:4433 --profile satellite-geo
  edge-sync linksim --target core.example:4433 --schedule day.txt --loop`

// linksimOpts are the flags of linksim.
type linksimOpts struct {
	listen, target, profile, schedule string
	loop                              bool
	interval, idle                    time.Duration
	seed                              uint64
}

func newLinksimCmd(env Env) *cobra.Command {
	var o linksimOpts
	c := leafCmd("linksim", "linksim --target ADDR (--profile NAME | --schedule FILE) [flags]", linksimUsage(), linksimExample,
		func(ctx context.Context) error { return runLinksim(ctx, env, o) })
	fs := c.Flags()
	fs.StringVar(&o.listen, "listen", "127.0.0.1:4434", "UDP `address` clients send to")
	fs.StringVar(&o.target, "target", "", "UDP `address` to forward to (required)")
	fs.StringVar(&o.profile, "profile", "", "built-in profile `name` (see above)")
	fs.StringVar(&o.schedule, "schedule", "", "schedule `file` of \"DURATION PROFILE\" lines")
	fs.BoolVar(&o.loop, "loop", false, "repeat the schedule until stopped")
	durationVar(fs, &o.interval, "interval", time.Second, "how often to print counters")
	durationVar(fs, &o.idle, "idle-timeout", 2*time.Minute, "forget a client after this long without traffic")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed for loss and jitter (0: random)")
	var profiles []string
	for _, p := range linksim.Profiles() {
		profiles = append(profiles, p.Name)
	}
	completeFlag(c, "profile", complete(profiles...))
	return c
}

func runLinksim(ctx context.Context, env Env, o linksimOpts) error {
	const name = "linksim"
	listen, target, profile, schedule, loop, interval, idle, seed := &o.listen, &o.target, &o.profile, &o.schedule, &o.loop, &o.interval, &o.idle, &o.seed
	switch {
	case *target == "":
		return usagef(name, "--target is required")
	case *profile == "" && *schedule == "":
		return usagef(name, "give --profile NAME or --schedule FILE")
	case *profile != "" && *schedule != "":
		return usagef(name, "give --profile or --schedule, not both")
	case *loop && *schedule == "":
		return usagef(name, "--loop needs --schedule")
	case *interval <= 0:
		return usagef(name, "--interval must be positive, got %v", *interval)
	case *idle <= 0:
		return usagef(name, "--idle-timeout must be positive, got %v", *idle)
	}

	var steps []linksim.Step
	first := linksim.Profile{}
	if *profile != "" {
		p, err := linksim.ProfileByName(*profile)
		if err != nil {
			return usagef(name, "--profile: %w", err)
		}
		first = p
	} else {
		var err error
		steps, err = readSchedule(*schedule)
		if err != nil {
			return err
		}
		first = steps[0].Profile
	}

	relay, err := linksim.NewRelay(linksim.RelayConfig{Listen: *listen, Target: *target, Profile: first,
		IdleTimeout: *idle, Seed: *seed})
	if err != nil {
		return fmt.Errorf("linksim: %w", err)
	}
	defer relay.Close()
	fmt.Fprintf(env.Stdout, "linksim: relaying %s -> %s, profile %s\n", relay.Addr(), *target, first.Name)

	ctx, cancel := context.WithCancel(ctx)
	schedDone := make(chan error, 1)
	if steps != nil {
		go func() { schedDone <- runSteps(ctx, relay, steps, *loop) }()
	} else {
		schedDone <- nil
	}
	defer func() {
		cancel()
		<-schedDone // the schedule goroutine stops before the relay closes
	}()
	return printCounters(ctx, env.Stdout, relay, *interval)
}

func readSchedule(path string) ([]linksim.Step, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("linksim: %w", err)
	}
	defer f.Close()
	steps, err := linksim.ParseSchedule(f)
	if err != nil {
		return nil, fmt.Errorf("linksim: %s: %w", path, err)
	}
	return steps, nil
}

// runSteps follows the schedule once, or until ctx ends when loop is set.
func runSteps(ctx context.Context, relay *linksim.Relay, steps []linksim.Step, loop bool) error {
	for {
		if err := relay.RunSchedule(ctx, steps); err != nil {
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		if !loop {
			return nil
		}
	}
}

// printCounters prints one line of counters every interval until ctx ends.
func printCounters(ctx context.Context, w io.Writer, relay *linksim.Relay, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	prev := relay.Stats()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			st := relay.Stats()
			secs := now.Sub(last).Seconds()
			fmt.Fprintf(w, "%s %s clients %d | up %s | down %s\n", now.Format("15:04:05"), st.Profile,
				relay.Clients(), dirLine(st.Up, prev.Up, secs), dirLine(st.Down, prev.Down, secs))
			prev, last = st, now
		}
	}
}

func dirLine(cur, prev linksim.DirStats, secs float64) string {
	bps := float64(cur.Bytes-prev.Bytes) * 8 / secs
	return fmt.Sprintf("%d pkt %d B %s drop queue %d loss %d outage %d qdelay %v",
		cur.Packets, cur.Bytes, units.FormatBitRate(bps), cur.DroppedQueue, cur.DroppedLoss, cur.DroppedOutage,
		cur.QueueDelay.Round(time.Millisecond))
}
