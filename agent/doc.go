// Package agent is the edge agent: endpoints, link monitors and the sender,
// with a Go API (Status, Quality, Measure, History, Timeline, Config,
// SetProfile, Switch, LeaseNext, StartMonitor, StopMonitor, VerifyOutbox,
// PurgeQuarantined) that the control API of agent/control serves over
// HTTP, and that the status page (internal/statuspage) reads.
//
// # Main types
//
//   - [Agent] (New, Start(ctx), Close) owns the outbox and one endpoint per
//     configured core. Each endpoint keeps a QUIC connection (mutual TLS,
//     ALPN edge-sync/1) up with capped backoff, runs a link monitor on it
//     and sends the outbox's ops under the sync parameters of the current
//     link class; Stats and /metrics report its counters, and Status the
//     transfers in flight with their progress and the last connection
//     error. Once a second a goroutine records each endpoint's link
//     figures, class, mode and queue in a ring of an hour's points
//     (Timeline, timeline.go; about 340 KiB per endpoint). Start's ctx
//     bounds the call, not the agent's run; Close stops every goroutine,
//     waits for it, and closes the outbox (docs/architecture.md#lifecycle).
//   - Ops go one per QUIC stream whose urgency is the op's priority
//     (wire's doc describes the conversation), except that when the core
//     grants wire.CapOpsPerStream (Options.DisableOpsPerStream turns the
//     offer off) small ops of one priority leased together go whole on
//     one stream, up to 64 and 1 MiB, in one write, each settled by its
//     own answer (sendop_pack.go, docs/design.md#packing-small-ops);
//     a pack takes one slot. Backfill ops join packs where the core
//     grants wire.CapPackedBackfill too, and summaries leased together
//     share a stream where it grants wire.CapSummariesPerStream
//     (backfill_summaries.go, docs/backfill.md#order;
//     Options.DisableSummaryFirstPacks turns both offers off). Each OP_HEADER carries the
//     SHA-256 the outbox took of the producer's bytes (outbox.Op.Hash),
//     which the core checks at commit. An op the outbox finds damaged is
//     quarantined and never sent; one the core refuses for a hash
//     mismatch or corrupt is checked again from disk (docs/integrity.md).
//     A refusal of the op's own, as a NACK or an ERROR that ended its
//     stream, never sends it again unchanged at once: it is parked for a
//     backoff, or goes again in full once its delta base is dropped
//     (corefull_refusals.go, docs/core.md#refusals-of-the-op). An op
//     refused store-full (the core's store has no room), busy, internal
//     or shutting-down, or whose stream the core ended with ERROR of one
//     of those codes, goes back to the outbox (one refused internal is
//     parked, as the failure may be its own) and every op waits a
//     backoff, then one op goes alone until the core stores again or
//     answers it for a reason of the op's own; a connection to another
//     address sends that op at once (corefull.go; Status's
//     CoreRefusing). The packed ordinary ops in
//     flight are bounded in bytes to about the link's bandwidth-delay
//     product, so that they fill the link and a critical op does not
//     wait behind a queue of them (packbudget.go).
//     Critical and schema ops
//     never wait for a slot; large ops (more than one chunk) are bounded
//     by the parameters' concurrency and pause at a chunk boundary when
//     the parameters change.
//   - Under summary-first parameters (satellite) the ops of the class's
//     summary priorities send their summary first; their full data
//     follows as backfill in priority order, oldest first (backfill.go,
//     docs/backfill.md), and Status says per priority what is held as
//     summary, what is backfilling and when it drains
//     (backfill_status.go; a data budget adds its wait, budget.go).
//
// # The data lane
//
// When the core grants wire.CapLane (Options.DisableLane turns the offer
// off), each connection also gets a wire/lane session on the same UDP
// socket: a rate-paced, loss-tolerant lane that fills long and lossy links
// one Cubic-controlled QUIC connection cannot. A large op then sends its
// OpHeader (Lane set, with a per-connection transfer number) and Commit on
// its stream as before, but its DATA frames on the lane, in batches of
// consecutive chunks (one lane transfer each, at most 8 per op) with the
// op's priority as urgency, keeping at most lane.OpWindow (max(8 MiB, 2
// chunks)) in flight from the oldest unfinished batch. The lane starts at
// the link monitor's last capacity when there is one.
// Exactly-once stays on the stream: the core acknowledges after Commit.
//
// # Data budget
//
// An endpoint with a budget block (docs/budget.md) has its UDP socket
// wrapped by budget.Conn, which counts every datagram sent; budget.go
// holds the sender's one check (a held priority is not leased, a
// transfer pauses at a chunk boundary, a priority near its stop sends
// summaries only), caps the lane's window at the room left, moves to the
// cheapest encoding past the economy share, caps the link monitor's probe
// budget at the allowance's rate, and serves transport.budget.*.
//
// # Caveats
//
//   - A lane transfer abandoned by a pause or a lost connection costs the
//     chunks that had not reached the core in order; the next attempt
//     resumes from what the core stored.
//   - If lane packets cannot pass while QUIC's do, a large op stalls until
//     the connection drops; turn the lane off with Options.DisableLane.
package agent
