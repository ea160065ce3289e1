package cli

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/outbox"
)

// This file is the demo's last step: check at the core that every op the
// agent accepted arrived exactly once, or was superseded by a newer
// version of its key, and print what it cost.

// tally counts the ops of one priority by what became of them.
type tally struct{ sent, delivered, superseded int }

// outcome is what became of one op at the core.
type outcome int

const (
	lost outcome = iota
	delivered
	superseded
)

// verify checks every op the agent accepted at the core and prints the
// summary; it fails when one is lost or duplicated.
func (d *demo) verify(w io.Writer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	seen, err := eventCounts(d.store, demoAgent)
	if err != nil {
		return err
	}
	byPrio, problems := d.check(seen)
	problems = append(problems, d.checkSummaries()...)
	d.noteVerified(byPrio, problems)
	var es agent.EndpointStats
	if stats := d.agent.Stats(); len(stats) > 0 {
		es = stats[0]
	}
	fmt.Fprintln(w, "\n── verified at the core")
	printTally(w, byPrio, es)
	printSavings(w, es)
	if d.refused > 0 {
		fmt.Fprintf(w, "puts refused by the agent (not accepted, so not verified): %d, the first: %v\n", d.refused, d.firstRef)
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		fmt.Fprintf(w, "\nVERIFICATION FAILED: %d problem(s)\n", len(problems))
		for i, p := range problems {
			if i == 20 {
				fmt.Fprintf(w, "  … and %d more\n", len(problems)-20)
				break
			}
			fmt.Fprintln(w, "  "+p)
		}
		return fmt.Errorf("demo: verification failed: %d problem(s)", len(problems))
	}
	fmt.Fprintf(w, "\nOK: all %d ops accepted by the agent are at the core exactly once (or superseded by a newer version of their key)\n", len(d.sent))
	return nil
}

// eventCounts counts how often each op ID is in the agent's event log.
func eventCounts(store core.Backend, agentName string) (map[edgesync.OpID]int, error) {
	const page = 10000
	seen := map[edgesync.OpID]int{}
	for from := uint64(1); ; {
		evs, err := store.Events(agentName, from, page)
		if err != nil && !errors.Is(err, core.ErrNotFound) {
			return nil, err
		}
		for _, e := range evs {
			seen[e.OpID]++
			from = e.Seq + 1
		}
		if len(evs) < page {
			return seen, nil
		}
	}
}

// check compares every op the agent accepted with what the core holds,
// given how often each op is in the event log. d.mu is held.
func (d *demo) check(seen map[edgesync.OpID]int) (map[edgesync.Priority]*tally, []string) {
	byPrio := map[edgesync.Priority]*tally{}
	for _, p := range edgesync.Priorities() {
		byPrio[p] = &tally{}
	}
	var problems []string
	for id, op := range d.sent {
		var res outcome
		var problem string
		if op.kind == edgesync.EventOp {
			res, problem = d.checkEvent(id, op, seen[id])
		} else {
			res, problem = d.checkState(id, op)
		}
		t := byPrio[op.priority]
		t.sent++
		switch res {
		case delivered:
			t.delivered++
		case superseded:
			t.superseded++
		}
		if problem != "" {
			problems = append(problems, problem)
		}
	}
	return byPrio, problems
}

// checkSummaries finds the summaries at the core whose full data never
// followed: after the drain, every key's latest summary must be
// superseded by its op's (or a newer op's) full data (docs/backfill.md).
func (d *demo) checkSummaries() []string {
	sums, err := d.store.Summaries(demoAgent, "", 1<<20)
	if err != nil && !errors.Is(err, core.ErrNotFound) {
		return []string{fmt.Sprintf("summaries at the core: %v", err)}
	}
	var problems []string
	for _, s := range sums {
		if !s.Superseded {
			problems = append(problems, fmt.Sprintf("key %s: the core has op %s's summary but its full data never arrived", s.Key, s.OpID))
		}
	}
	return problems
}

// dropReason says why the outbox dropped id, or that it did not.
func (d *demo) dropReason(id edgesync.OpID) string {
	if r, ok := d.dropped[id]; ok {
		return "dropped by the outbox: " + r.String()
	}
	return "not dropped by the outbox"
}

// checkEvent judges an event found n times in the event log.
func (d *demo) checkEvent(id edgesync.OpID, op demoOp, n int) (outcome, string) {
	switch {
	case n == 1:
		return delivered, ""
	case n > 1:
		return lost, fmt.Sprintf("event %s (%s) stored %d times", id, op.key, n)
	}
	return lost, fmt.Sprintf("event %s (%s) missing at the core (%s)", id, op.key, d.dropReason(id))
}

// checkState judges a state op: the newest of its key must be the key's
// current version at the core; an older one was superseded in the outbox
// or applied before the newer one came.
func (d *demo) checkState(id edgesync.OpID, op demoOp) (outcome, string) {
	if d.lastByKy[op.key] != id {
		if r, ok := d.dropped[id]; ok && r == outbox.ReasonSuperseded {
			return superseded, ""
		}
		applied, err := d.store.Applied(demoAgent, id)
		switch {
		case err != nil:
			return lost, fmt.Sprintf("state op %s (%s): %v", id, op.key, err)
		case applied:
			return delivered, ""
		}
		return lost, fmt.Sprintf("state op %s (%s) neither delivered nor superseded (%s)", id, op.key, d.dropReason(id))
	}
	v, _, err := d.store.Current(demoAgent, op.key)
	switch {
	case err != nil:
		return lost, fmt.Sprintf("key %s missing at the core: %v", op.key, err)
	case v.Hash != op.hash:
		return lost, fmt.Sprintf("key %s: the core holds another version than the newest one sent", op.key)
	}
	return delivered, ""
}

// printTally prints what became of the ops of each priority, with the
// agent's latency figures.
func printTally(w io.Writer, byPrio map[edgesync.Priority]*tally, es agent.EndpointStats) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "priority\tsent\tdelivered\tsuperseded\tavg latency\tmax latency\t")
	for _, p := range edgesync.Priorities() {
		t := byPrio[p]
		ps := es.Priorities[p.String()]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\t\n", p, t.sent, t.delivered, t.superseded,
			ps.AvgLatency.Round(time.Millisecond), ps.MaxLatency.Round(time.Millisecond))
	}
	tw.Flush()
}

// printSavings prints the bytes each sync mode sent against the payload,
// summaries, mode switches and reconnects.
func printSavings(w io.Writer, es agent.EndpointStats) {
	var plain, onWire int64
	modes := make([]string, 0, len(es.Modes))
	for m := range es.Modes {
		modes = append(modes, m)
	}
	sort.Strings(modes)
	fmt.Fprintln(w)
	for _, m := range modes {
		ms := es.Modes[m]
		plain += ms.PlainBytes
		onWire += ms.WireBytes
		saved := 0.0
		if ms.PlainBytes > 0 {
			saved = 100 * (1 - float64(ms.WireBytes)/float64(ms.PlainBytes))
		}
		fmt.Fprintf(w, "mode %-11s %6d transfers, %10s payload → %10s on the wire (%.0f %% saved)\n", m, ms.Ops, units.FormatBytes(ms.PlainBytes), units.FormatBytes(ms.WireBytes), saved)
	}
	fmt.Fprintf(w, "summaries sent first: %d (holding back %s for a while)\n", es.Summaries, units.FormatBytes(es.SummaryBytes))
	fmt.Fprintf(w, "arrived as summary first, then in full (backfill): %d ops, %s\n", es.Backfilled, units.FormatBytes(es.BackfilledBytes))
	fmt.Fprintf(w, "mode switches: %d, reconnects: %d, transfers paused at a chunk boundary: %d\n", es.ModeSwitches, max(0, es.Connects-1), es.Paused)
	if plain > 0 {
		fmt.Fprintf(w, "in all: %s of payload sent as %s (%.0f %% saved by compression and deltas)\n", units.FormatBytes(plain), units.FormatBytes(onWire), 100*(1-float64(onWire)/float64(plain)))
	}
}
