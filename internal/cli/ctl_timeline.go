package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/internal/units"
)

// timelineCommand is ctl transport.bandwidth.timeline: what the status
// page plots, as a table.
func timelineCommand() ctlCommand {
	return ctlCommand{control.CmdTimeline, "Usage: edge-sync ctl transport.bandwidth.timeline [--endpoint E] [--window D]\n\nPrints the endpoint's timeline within the window, one line a second: the\nlink figures, class, sync mode and queue per priority that the status\npage plots (the agent keeps the last hour).\n\nExample:\n  edge-sync ctl transport.bandwidth.timeline --window 5m",
		func(fs *flag.FlagSet) func(context.Context, *ctlRun) error {
			ep := endpointFlag(fs)
			window := fs.Duration("window", 10*time.Minute, "how far back (at most 1h)")
			return func(ctx context.Context, x *ctlRun) error {
				if err := x.noArgs(); err != nil {
					return err
				}
				if *window <= 0 {
					return usagef(x.name, "--window must be positive, got %v", *window)
				}
				var tl agent.Timeline
				return x.call(ctx, control.CmdTimeline, control.TimelineRequest{Endpoint: *ep, Window: window.String()}, &tl, func(w io.Writer) { printTimeline(w, tl) })
			}
		}}
}

// printTimeline prints one line per point; the queue column is the ops
// waiting per priority, most urgent first.
func printTimeline(w io.Writer, tl agent.Timeline) {
	if len(tl.Points) == 0 {
		fmt.Fprintln(w, "no points in the window")
		return
	}
	names := make([]string, len(tl.Priorities))
	for i, p := range tl.Priorities {
		names[i] = p.String()
	}
	tw := table(w)
	fmt.Fprintf(tw, "AT\tCONNECTED\tCLASS\tMODE\tBANDWIDTH\tRTT\tLOSS\tQUEUE (%s)\n", strings.Join(names, " "))
	for _, p := range tl.Points {
		bw := "-"
		if p.BandwidthBps > 0 {
			bw = units.FormatBitRate(p.BandwidthBps)
		}
		q := make([]string, len(tl.Priorities))
		for i := range q {
			q[i] = fmt.Sprint(p.QueueOps[i])
		}
		fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%v\t%.1f%%\t%s\n", p.At.Local().Format("15:04:05"), p.Connected, p.Class, p.Mode,
			bw, p.RTT.Round(time.Millisecond), p.Loss*100, strings.Join(q, " "))
	}
	tw.Flush()
}
