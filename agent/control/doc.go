// Package control is the agent's control API: JSON over HTTP on a unix
// socket (mode 0600) and, optionally, a loopback TCP address with a bearer
// token. docs/control-api.md documents every command.
//
// # Main types
//
//   - [Server] (NewServer, Serve, Close) serves the API for an
//     *agent.Agent: one handler per command, each calling the agent's Go
//     API (Status, Quality, Measure, History, Timeline, Config,
//     SetProfile, Switch, LeaseNext, StartMonitor, StopMonitor,
//     VerifyOutbox, PurgeQuarantined, Enqueue) and mapping the
//     agent's errors to HTTP statuses and stable codes in one place. A
//     JSON command is a function of its decoded request that returns the
//     answer or an error (command, in handlers.go); the uploads and
//     sync.next stream their bodies. Serve runs once; Close waits until
//     it has returned (docs/architecture.md#lifecycle).
//   - [Client] (NewClient, NewClientTCP) speaks it, for `edge-sync ctl`,
//     `edge-sync put` and Go programs: Call for JSON commands, Upload for
//     the streaming sends, Lease for sync.next, Health.
//   - The command names (Cmd*, Commands) and the request and answer shapes
//     both sides share. Answers that are the agent's own types
//     (agent.LinkStatus, agent.RuntimeConfig, agent.MonitorResult,
//     agent.Timeline) are sent as they are.
//
// The package imports agent; agent does not import it, so the agent's Go
// API is usable without HTTP.
//
// # Caveats
//
//   - A request with more than one mistake is answered with the first
//     found; parsing the request comes before the agent's checks.
//   - Changes made through the API (pins, profiles, endpoints added by
//     monitor.start) last until the agent restarts.
package control
