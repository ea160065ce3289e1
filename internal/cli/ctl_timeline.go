package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/spf13/pflag"
)

// timelineCommand is ctl transport.bandwidth.timeline: what the status
// page plots, as a table.
func timelineCommand() ctlCommand {
	return ctlCommand{
		name: control.CmdTimeline, args: "[--endpoint E] [--window D]", short: "the status page's plots as a table: link, class, mode, queue per second", watch: true,
		long: `Prints the endpoint's timeline within the window, one line a second: the
link figures, class, sync mode and queue per priority that the status
page plots (the agent keeps the last hour).`,
		example: "  edge-sync ctl transport.bandwidth.timeline --window 5m",
		setup: func(fs *pflag.FlagSet) ctlAction {
			return windowAction(fs, "how far back (at most 1h)", func(ctx context.Context, x *ctlRun, endpoint string, window time.Duration) error {
				var tl agent.Timeline
				return x.call(ctx, control.CmdTimeline, control.TimelineRequest{Endpoint: endpoint, Window: window.String()}, &tl, func(w io.Writer) { printTimeline(w, tl) })
			})
		},
	}
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
