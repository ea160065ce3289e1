// Package statuspage renders the operator's pages: the status page the
// agent and the core serve at / on their metrics listener, beside
// /metrics, and the report `edge-sync demo --report` writes.
//
// # Main functions
//
//   - Agent(a) is the agent's metrics listener handler: per endpoint the
//     link's last hour (bandwidth, RTT and loss over time, the class as
//     coloured bands behind them, mode switches marked), the queue per
//     priority over time, the transfers in flight with their progress,
//     what is held back as summaries, the data budget where there is one,
//     and the last connection error. It reads the agent's Go API (Status,
//     Stats, Timeline, Config), which the control API serves too.
//   - Core(s, metrics) is the core's: the agents (connected, last
//     seen, ops and bytes received, lag since the last op) and the core's
//     own counters, from Server.Agents and Server.Stats.
//   - WriteReport writes the demo's report: the same plots over the whole
//     link walk with the true link beside the measured one, the latency
//     per priority and the verified summary, as one file.
//
// The plots are SVG rendered here in Go (Plot); every element a test or a
// script may look for carries a stable data- attribute (data-series,
// data-class, data-mode-switch, data-step, data-current-class, ...).
// A live page refetches its live part (GET /?part=live) every two seconds
// with a dozen lines of script and swaps it in, so it follows the agent
// without a reload. The style sheet and the script are embedded; nothing
// is fetched from elsewhere, and the Content-Security-Policy allows only
// them (by hash) and fetches of the page itself.
//
// # Caveats
//
// The pages are as safe to expose as /metrics, and no safer: they are
// read-only (GET and HEAD only) but carry op keys, endpoint addresses and
// error texts. Serve the metrics listener where /metrics may be read.
// Times are shown in the serving process's time zone.
package statuspage
