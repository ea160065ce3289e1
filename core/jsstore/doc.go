// Package jsstore is a core store (core.Backend) in NATS JetStream, so
// that any number of `edge-sync core` processes share one store, partial
// ops resume on any of them, and applications read what arrived with any
// NATS client. The layout, as a contract for those applications, and the
// reasoning behind it are in docs/jetstream.md.
//
// # Layout (prefix P, default "edgesync")
//
//	KV P_state      <agent>.<key>   the current version of each key, with history;
//	                                the data itself, or (over InlineMax) a pointer
//	                                to its chunks in P_data
//	KV P_summaries  <agent>.<key>   the latest summary of each key
//	KV P_applied    <agent>.<op>    the applied-op index of state ops (and of
//	                                events with one replica): KV Create, max age
//	KV P_partials   <agent>.<op>    partial ops held in JetStream
//	KV P_agents     <agent>         per-agent counters
//	P_events        P.ev.<agent>.<key>     one message per event
//	                P.applied.<agent>.<op> its applied marker (replicas > 1),
//	                                       in one atomic batch with it
//	P_data          P.data.<agent>.<blob>  chunks of data over InlineMax
//
// Agent names and keys become subject tokens by Token's escaping; every
// message carries the raw names and the op's metadata in Edge-Sync-*
// headers.
//
// # Main types
//
//   - [Store] (Open, or OpenStore from a config.Core; Close) implements
//     core.Backend plus Apply, Sweep, Summary, Partials and CheckBase, as
//     core.Store does; core/storetest runs the same suite on both.
//   - [Config] is core.Config's limits plus where the store lives.
//
// # Exactly once, and durability
//
// An op is acknowledged once JetStream has acknowledged its writes (a
// majority of Replicas). On a replicated store an event is one write: an
// atomic batch of its create-only applied marker and the event, both
// visible or neither (events.go). Otherwise (state ops; events with one
// replica, where the server stages a batch on disk with fsyncs) its op ID
// is created in the applied bucket with KV Create before its effect is
// written; a core that finds the ID there checks whether the effect is
// visible and finishes it if not. So an op that two cores receive (an
// agent that failed over mid-commit), or that a core received before it
// died, is applied once. The order of writes is in apply.go;
// TestCrashBetweenWrites kills a writer process between each pair of them.
//
// # Reads
//
// A read shows every write acknowledged before it began, on a replicated
// store too: message gets go to the stream's leader (direct gets are off),
// and a scan, whose consumer may be on a follower, waits until it has seen
// the last matching message the leader holds (scan.go; docs/jetstream.md,
// "Reading what was written").
//
// # Caveats
//
//   - Ops up to InlineMax are held in the receiving core's memory until
//     their commit: they do not resume on another core (the agent sends
//     them again whole), and BeginPartial does not report them as
//     duplicates (their commit does).
//   - Counters are added up in memory and flushed every FlushInterval; a
//     core that dies loses those of its last interval. The quota of an
//     agent writing through several cores at once can be passed by what
//     they reserve within one interval.
//   - Event sequence numbers are the events stream's: increasing, but
//     shared by all agents.
//   - Event retention (EventMaxCount, EventMaxBytes) is applied by Sweep,
//     every SweepInterval, by one core at a time.
//   - Every stream refuses new messages at a size limit an operator set
//     (discard new; Open keeps the limits), so a full stream answers
//     core.ErrStoreFull and drops nothing (full.go).
//   - Every core on one JetStream must use the same Prefix, InlineMax,
//     retention and DuplicateWindow, and the NATS servers' clocks must
//     agree within an hour.
package jsstore
