package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/internal/units"
)

// budgetCommands are ctl transport.budget.status, .set and .reset
// (docs/budget.md).
func budgetCommands() []ctlCommand {
	return []ctlCommand{
		{
			name: control.CmdBudgetStatus, args: "[--endpoint E]", short: "the data budget: spent, left, forecast, what is held back", watch: true,
			long: `Prints the endpoint's data budget: the period, what was spent (counted as
UDP bytes leaving the agent's socket), what is left, the forecast for the
period at the rate so far, each priority's stop, and what the budget holds
back and since when.`,
			example: "  edge-sync ctl transport.budget.status\n  edge-sync ctl transport.budget.status --json",
			setup:   budgetCall(control.CmdBudgetStatus),
		},
		{
			name: control.CmdBudgetSet, args: "[--endpoint E] ALLOWANCE", short: "change the allowance per period (e.g. 60GiB); kept across restarts",
			long: `Changes the endpoint's allowance per period from now on, e.g. after the
plan was upgraded. The reserve keeps its share of it; the spend so far
stays. The new allowance is kept across restarts until the config file's
changes.`,
			example: "  edge-sync ctl transport.budget.set 60GiB",
			setup: func(fs *pflag.FlagSet) ctlAction {
				ep := endpointFlag(fs)
				return func(ctx context.Context, x *ctlRun) error {
					if len(x.args) != 1 {
						return usagef(x.name, "want one allowance, such as 60GiB")
					}
					var st agent.BudgetStatus
					return x.call(ctx, control.CmdBudgetSet, control.BudgetSetRequest{Endpoint: *ep, Allowance: x.args[0]}, &st, func(w io.Writer) { printBudget(w, st, time.Now()) })
				}
			},
		},
		{
			name: control.CmdBudgetReset, args: "[--endpoint E]", short: "zero the spend of the current period (a topped-up plan)",
			long: `Zeroes the spend of the endpoint's current period, e.g. after the plan was
topped up: every priority may send again.`,
			example: "  edge-sync ctl transport.budget.reset",
			setup:   budgetCall(control.CmdBudgetReset),
		},
	}
}

// printBudget prints transport.budget.status.
func printBudget(w io.Writer, st agent.BudgetStatus, now time.Time) {
	tw := table(w)
	pct := func(n int64) string { return fmt.Sprintf("%.1f %%", float64(n)*100/float64(max(1, st.Allowance))) }
	fmt.Fprintf(tw, "endpoint\t%s\n", st.Endpoint)
	fmt.Fprintf(tw, "allowance\t%s per %s, reserve %s for critical and schema\n", units.FormatBytes(st.Allowance), st.Period, units.FormatBytes(st.Reserve))
	fmt.Fprintf(tw, "period\t%s to %s (%s), renews in %s\n", st.PeriodStart.Format(time.DateTime), st.PeriodEnd.Format(time.DateTime), st.Zone,
		units.FormatDuration(st.PeriodEnd.Sub(now).Round(time.Second)))
	fmt.Fprintf(tw, "spent\t%s (%s)\n", units.FormatBytes(st.Spent), pct(st.Spent))
	fmt.Fprintf(tw, "left\t%s\n", units.FormatBytes(st.Left))
	fmt.Fprintf(tw, "forecast\t%s by the period's end at the rate so far (%s)\n", units.FormatBytes(st.Forecast), pct(st.Forecast))
	fmt.Fprintf(tw, "overhead\t%s (handshakes, acknowledgements, probes, retransmissions)\n", units.FormatBytes(st.Overhead))
	if st.Economy {
		fmt.Fprintf(tw, "encoding\tcheapest (best compression, deltas): the allowance runs low\n")
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = table(w)
	fmt.Fprintln(tw, "PRIORITY\tSTOPS AT\tSENT\tNOW\tHELD")
	held := map[string]agent.BudgetHeld{}
	for _, h := range st.Held {
		held[h.Priority.String()] = h
	}
	for _, p := range st.Priorities {
		h := "-"
		if x, ok := held[p.Priority.String()]; ok && x.Ops > 0 {
			h = fmt.Sprintf("%d ops, %s", x.Ops, units.FormatBytes(x.Bytes))
			if x.Since != nil {
				h += " since " + ago(*x.Since, now)
			}
		}
		fmt.Fprintf(tw, "%s\t%s (%s)\t%s\t%s\t%s\n", p.Priority, units.FormatBytes(p.Threshold), pct(p.Threshold),
			units.FormatBytes(st.ByPriority[p.Priority.String()]), p.Verdict, h)
	}
	tw.Flush()
}

// budgetCall is a budget command that takes no arguments, only the
// endpoint, and prints the budget it answers.
func budgetCall(cmd string) func(*pflag.FlagSet) ctlAction {
	return func(fs *pflag.FlagSet) ctlAction {
		return endpointAction(fs, cmd, func(w io.Writer, st agent.BudgetStatus) { printBudget(w, st, time.Now()) })
	}
}
