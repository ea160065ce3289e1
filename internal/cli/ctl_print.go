package cli

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linkmon"
)

// This file renders ctl's answers as readable tables.

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

func figures(m linkmon.Measurement) string {
	if m.At.IsZero() && m.BandwidthBps == 0 && m.RTT == 0 {
		return "no measurement yet"
	}
	return m.String()
}

func ago(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return fmt.Sprintf("%s (%s ago)", t.Local().Format("2006-01-02 15:04:05"), units.FormatDuration(now.Sub(t).Round(time.Second)))
}

// maxTransferRows bounds the transfers status lists; the rest are counted.
const maxTransferRows = 10

// printStatus explains transport.bandwidth.status.
func printStatus(w io.Writer, st agent.LinkStatus, now time.Time) {
	tw := table(w)
	conn := "not connected"
	if st.Connected {
		conn = "connected"
	}
	if st.State != "" {
		conn = string(st.State)
	}
	fmt.Fprintf(tw, "endpoint\t%s (%s), %s\n", st.Endpoint, st.Address, conn)
	if st.State == agent.LinkUnreachable {
		fmt.Fprintf(tw, "link\tdown since %s: %s\n", ago(*st.DownSince, now), st.StateReason)
	}
	if len(st.Addresses) > 1 {
		fmt.Fprintf(tw, "address\t%d of %s: %s (%s)\n", slices.Index(st.Addresses, st.Address)+1, strings.Join(st.Addresses, ", "),
			st.AddressChoice.Reason, ago(st.AddressChoice.Since, now))
	}
	cannot := st.LastError != nil && !st.Connected
	if cannot {
		fmt.Fprintf(tw, "connection\tcannot connect: %s (last try %s ago)\n", st.LastError.Error,
			units.FormatDuration(now.Sub(st.LastError.At).Round(time.Second)))
	}
	class := st.Class.String()
	if st.Measured != st.Class {
		class += fmt.Sprintf(" (measured: %s)", st.Measured)
	}
	if cannot {
		class += " (no connection: the class only sees unanswered samples)"
	}
	fmt.Fprintf(tw, "class\t%s\n", class)
	fmt.Fprintf(tw, "since\t%s\n", ago(st.Since, now))
	fmt.Fprintf(tw, "why\t%s\n", st.Reason)
	if st.LastChange != nil {
		fmt.Fprintf(tw, "last change\t%s\n", st.LastChange.String())
	}
	fmt.Fprintf(tw, "pin\t%s\n", st.Pin)
	fmt.Fprintf(tw, "figures\t%s (%d samples)\n", figures(st.Figures), st.Samples)
	fmt.Fprintf(tw, "params\t%s\n", st.Params.String())
	var ops int
	var bytes int64
	for _, b := range st.Backlog {
		ops += b.Ops
		bytes += b.Bytes
	}
	fmt.Fprintf(tw, "backlog\t%d ops, %s\n", ops, units.FormatBytes(bytes))
	eta := "unknown (no bandwidth measured)"
	switch {
	case bytes == 0:
		eta = "nothing waiting"
	case st.DrainETA > 0:
		eta = units.FormatDuration(st.DrainETA.Round(time.Second))
		if eta == "0s" {
			eta = "under a second"
		}
	}
	fmt.Fprintf(tw, "in flight\t%d transfer(s)\n", len(st.Transfers))
	fmt.Fprintf(tw, "drain ETA\t%s\n", eta)
	if st.Damage != "" {
		fmt.Fprintf(tw, "damaged\t%s\n", st.Damage)
	}
	if r := st.CoreRefusing; r != nil {
		next := "now"
		if d := r.NextTry.Sub(now); d > 0 {
			next = "in " + units.FormatDuration(d.Round(time.Second))
		}
		fmt.Fprintf(tw, "core refuses\t%s since %s, %d refusals, next try %s: %s\n", r.Code, ago(r.Since, now), r.Refusals, next, r.Explain)
	}
	tw.Flush()
	printTransfers(w, st.Transfers)
	fmt.Fprintln(w)
	tw = table(w)
	fmt.Fprintln(tw, "PRIORITY\tOPS\tBYTES\tHELD AS SUMMARY\tBACKFILLING\tDRAIN ETA")
	for _, p := range edgesync.Priorities() {
		b := st.Backlog[p.String()]
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", p, b.Ops, units.FormatBytes(b.Bytes), summaryColumns(st.Summaries, p, b.Ops))
	}
	tw.Flush()
}

// printTransfers lists the transfers in flight with their progress.
func printTransfers(w io.Writer, ts []agent.Transfer) {
	if len(ts) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := table(w)
	fmt.Fprintln(tw, "IN FLIGHT\tKEY\tPRIORITY\tSENT\tRATE\tETA")
	for i, t := range ts {
		if i == maxTransferRows {
			fmt.Fprintf(tw, "... and %d more\t\t\t\t\t\n", len(ts)-i)
			break
		}
		pct := 100.0
		if t.Size > 0 {
			pct = float64(t.Sent) / float64(t.Size) * 100
		}
		rate, eta := "-", "stalled or starting"
		if t.RateBps > 0 {
			rate, eta = units.FormatBitRate(t.RateBps), units.FormatDuration(t.ETA.Round(time.Second))
			if eta == "0s" {
				eta = "under a second"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s of %s (%.0f%%)\t%s\t%s\n", t.ID, t.Key, t.Priority,
			units.FormatBytes(t.Sent), units.FormatBytes(t.Size), pct, rate, eta)
	}
	tw.Flush()
}

func printMeasurements(w io.Writer, ms []linkmon.Measurement) {
	if len(ms) == 0 {
		fmt.Fprintln(w, "no measurements in the window")
		return
	}
	tw := table(w)
	fmt.Fprintln(tw, "AT\tBANDWIDTH\tRTT\tJITTER\tLOSS\tMETHOD")
	for _, m := range ms {
		at, bw := "-", "-"
		if !m.At.IsZero() {
			at = m.At.Local().Format("15:04:05")
		}
		if m.BandwidthBps > 0 {
			bw = units.FormatBitRate(m.BandwidthBps)
			if m.BandwidthLowerBound {
				bw = ">=" + bw
			}
		}
		method := m.Method.String()
		if m.Stale {
			method += " (stale)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.1f%%\t%s\n", at, bw, units.FormatDuration(m.RTT), units.FormatDuration(m.Jitter), m.Loss*100, method)
	}
	tw.Flush()
}

func printStats(w io.Writer, st control.StatsResponse) {
	o := st.Outbox
	fmt.Fprintf(w, "agent %s: outbox %d ops (%s), %d leased, oldest %s, limits %d ops / %s\n",
		st.Agent, o.Ops, units.FormatBytes(o.Bytes), o.Leased, units.FormatDuration(o.OldestAge.Round(time.Second)), o.MaxOps, units.FormatBytes(o.MaxBytes))
	var drops []string
	for r, n := range o.Drops {
		drops = append(drops, fmt.Sprintf("%s=%d", r, n))
	}
	sort.Strings(drops)
	fmt.Fprintf(w, "drops: %s\n", strings.Join(drops, " "))
	if q := o.Quarantined; q.Ops > 0 {
		fmt.Fprintf(w, "quarantined: %d op(s), %s, damaged on disk and never sent: run 'edge-sync ctl transport.outbox.verify'\n",
			q.Ops, units.FormatBytes(q.Bytes))
	}
	for _, e := range st.Endpoints {
		fmt.Fprintf(w, "\nendpoint %s: connected=%t connects=%d dial_failures=%d mode_switches=%d retries=%d summaries=%d\n",
			e.Endpoint, e.Connected, e.Connects, e.DialFailures, e.ModeSwitches, e.Retries, e.Summaries)
		tw := table(w)
		fmt.Fprintln(tw, "PRIORITY\tQUEUED\tACKED\tACKED BYTES\tAVG LATENCY\tMAX LATENCY")
		for _, p := range edgesync.Priorities() {
			ps, q := e.Priorities[p.String()], o.ByPriority[p.String()]
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", p, q.Ops, ps.Acked, units.FormatBytes(ps.Bytes),
				units.FormatDuration(ps.AvgLatency.Round(time.Millisecond)), units.FormatDuration(ps.MaxLatency.Round(time.Millisecond)))
		}
		tw.Flush()
		if len(e.Modes) > 0 {
			tw = table(w)
			fmt.Fprintln(tw, "MODE\tOPS\tPLAIN\tON THE WIRE\tRATIO")
			modes := make([]string, 0, len(e.Modes))
			for m := range e.Modes {
				modes = append(modes, m)
			}
			sort.Strings(modes)
			for _, m := range modes {
				ms := e.Modes[m]
				ratio := "-"
				if ms.PlainBytes > 0 {
					ratio = fmt.Sprintf("%.2f", float64(ms.WireBytes)/float64(ms.PlainBytes))
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", m, ms.Ops, units.FormatBytes(ms.PlainBytes), units.FormatBytes(ms.WireBytes), ratio)
			}
			tw.Flush()
		}
		if len(e.Nacks) > 0 {
			var ns []string
			for c, n := range e.Nacks {
				ns = append(ns, fmt.Sprintf("%s=%d", c, n))
			}
			sort.Strings(ns)
			fmt.Fprintf(w, "nacks: %s\n", strings.Join(ns, " "))
		}
	}
}

func printConfig(w io.Writer, rc agent.RuntimeConfig) {
	fmt.Fprintf(w, "agent %s, outbox max %d ops, %s\n\n", rc.Name, rc.Outbox.MaxOps, units.FormatBytes(rc.Outbox.MaxBytes))
	tw := table(w)
	fmt.Fprintln(tw, "ENDPOINT\tADDRESS\tCLASS\tPIN\tPARAMETERS")
	for _, e := range rc.Endpoints {
		p := rc.Params[e.Name]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Name, e.Address, rc.Classes[e.Name], rc.Pins[e.Name], p.String())
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = table(w)
	fmt.Fprintln(tw, "CLASS\tPROFILE\tOVERRIDDEN")
	for _, c := range edgesync.LinkClasses() {
		_, ov := rc.Overrides[c]
		fmt.Fprintf(tw, "%s\t%s\t%t\n", c, rc.Profiles[c].Params.String(), ov)
	}
	tw.Flush()
}

func printLeased(w io.Writer, op control.LeasedOp, out string) {
	tw := table(w)
	fmt.Fprintf(tw, "id\t%s\n", op.ID)
	fmt.Fprintf(tw, "endpoint\t%s\n", op.Endpoint)
	fmt.Fprintf(tw, "key\t%s\n", op.Key)
	fmt.Fprintf(tw, "priority\t%s\n", op.Priority)
	fmt.Fprintf(tw, "kind\t%s\n", op.Kind)
	fmt.Fprintf(tw, "size\t%s\n", units.FormatBytes(op.Size))
	if len(op.Summary) > 0 {
		fmt.Fprintf(tw, "summary\t%q\n", op.Summary)
	}
	fmt.Fprintf(tw, "enqueued\t%s\n", op.EnqueuedAt.Local().Format(time.RFC3339))
	fmt.Fprintf(tw, "lease ends\t%s\n", op.LeaseExpires.Local().Format(time.RFC3339))
	switch out {
	case "":
		fmt.Fprintf(tw, "payload\tnot fetched (use --out FILE)\n")
	case "-":
	default:
		fmt.Fprintf(tw, "payload\twritten to %s\n", out)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nWhen done: edge-sync ctl %s --ack %s (or --release it)\n", control.CmdNext, op.ID)
}

// summaryColumns are a priority's held-as-summary, backfilling and drain
// ETA columns of transport.bandwidth.status (docs/backfill.md); "-" for
// critical and schema, which never send summaries.
func summaryColumns(sums map[string]agent.SummaryStatus, p edgesync.Priority, ops int) string {
	s, ok := sums[p.String()]
	if !ok {
		return "-\t-\t-"
	}
	count := func(b agent.Backlog) string {
		if b.Ops == 0 {
			return "0"
		}
		return fmt.Sprintf("%d, %s", b.Ops, units.FormatBytes(b.Bytes))
	}
	eta := "-"
	switch {
	case ops > 0 && s.DrainETA > 0:
		eta = units.FormatDuration(s.DrainETA.Round(time.Second))
	case ops > 0:
		eta = "unknown"
	}
	return count(s.Held) + "\t" + count(s.Backfilling) + "\t" + eta
}
