// Package core is the receiving server at the core site and its store.
// Its admin API, read-only views of the store for local tools, is
// core/admin.
//
// # Server
//
// Server (New and OpenStore from a config.Core, or NewServer and Open
// from parts; Serve once, Close, which waits until Serve has returned;
// docs/architecture.md#lifecycle) accepts agents over QUIC with mutual
// TLS, answers Hello with Welcome, and runs one goroutine per op stream
// (server_op.go): OpHeader, then DATA frames decoded chunk by chunk into a
// partial op, then Commit, answered with Ack or Nack after the store's
// fsync. A lane.Demux is the transport's single reader of non-QUIC
// packets: probe trains go to the link monitor's responder, data-lane
// packets to their session. When an agent offers wire.CapLane (and
// ServerConfig.DisableLane is off) the connection gets a lane session;
// ops with OpHeader.Lane receive their DATA frames there (batches of
// consecutive chunks, one per lane transfer), reassembled and stored in
// chunk order by the same code as stream DATA, at most twice
// lane.OpWindow (max(8 MiB, 2 chunks)) held per op (server_lane.go).
// Agents reports each agent heard from since the start (connected, last
// seen, ops and bytes received, last op), at most MaxTrackedAgents of
// them, for /metrics and the status page (agents.go). When an agent
// offers wire.CapOpsPerStream (and ServerConfig.DisableOpsPerStream is
// off), a stream whose first op is whole may carry up to
// wire.MaxOpsPerStream whole small ops: the handler reads them all,
// applies them together (WholeOpsApplier) and answers each in order in
// one write (server_packed.go); ops sent after their summary
// (OpHeader.Summarized) among them only where it granted
// wire.CapPackedBackfill too. With wire.CapSummariesPerStream granted, a
// stream may carry up to wire.MaxOpsPerStream SUMMARY frames, each stored
// as it is read and answered in order (server_summaries.go).
// ServerConfig.DisablePackedBackfill refuses both offers.
//
// # Backend
//
// The server and the admin API use the store through Backend, the methods
// they call, with Sweeper and AgentStatser as optional extras. Store (the
// bbolt file below) implements it, and so does core/jsstore (NATS
// JetStream, shared by many cores); another store hands out its data with
// NewObject. core/storetest is the suite both pass.
// Every hour (ServerConfig.SweepInterval) Serve runs the store's Sweep.
//
// Against broken or hostile peers (docs/core.md): an op stream reads only
// the frames that may come next and refuses others after their header;
// the memory held for frames in flight is reserved, as it arrives, in the
// connection's budget and the core's (server_memory.go), and so are the
// decoder's scratch and the ops a stream of several holds (each op's
// header as it is read, its plain size before its DATA is decoded into
// it), and the stream's read-ahead buffer (at most 4 of a connection's
// streams hold one), which a stream goes without when it does not fit
// (server_read.go); an op that does not fit is
// refused busy; a stream the core answered early is read
// to its end or cancelled, so that its slot is freed; a partial op's
// quota reservation ends when the last stream receiving it does; a
// stream the agent reset is not an error.
//
// A write the store has no room for (ENOSPC, bbolt's MaxSize, or an
// error wrapping ErrStoreFull, as core/jsstore's do) is answered
// store-full, logged as one ERROR a minute at most with the store's
// Room (where, free space, what to do) and shown on /metrics
// (server_storefull.go; docs/core.md, "When the store is full").
//
// # Store
//
// Store is an embedded bbolt database holding, per agent (the agent's name
// is its client certificate's name):
//
//   - the current version of each key (Version: op ID, size, SHA-256,
//     priority, stored time, version counter) with its data in chunks;
//   - the latest summary received per key (Summary), marked superseded once
//     the full data of that op, or a newer one, is stored;
//   - an append-only event log (Event) with sequence numbers from 1, bounded
//     by Config.EventMaxCount/EventMaxBytes (oldest dropped first);
//   - the applied-op index used to de-duplicate by op ID, bounded by
//     Config.AppliedMaxAge/AppliedMaxCount: an op found there is reported as
//     Result.Duplicate (acknowledge again) and not applied again;
//   - partial ops (BeginPartial, WritePartial, PartialSize, CommitPartial,
//     ReleasePartial) that survive a dropped connection and a restart, so
//     an agent can ask where to continue.
//
// Every method that changes data returns after bbolt's fsync. Object data
// is written in chunks of Config.ChunkSize, over as many transactions as
// the op arrived in, then published by one small transaction that also
// records the op as applied; so an op is either wholly applied or not at
// all, and no large object is ever held whole in memory. Readers (Object)
// use one short read transaction per ReadAt. Apply is the one-shot form for
// ops held in a reader; ApplyWhole for an op held in memory, as the server
// hands over an op of one chunk (WholeApplier); ApplyWholeOps for the ops
// of a stream of several, applied together (WholeOpsApplier, docs/wire.md
// "Several ops per stream"). Concurrent changes share
// one transaction and fsync (group commit, store_group.go and
// docs/core.md), each caller returning once its transaction committed.
//
// The store does not decode deltas: the server decodes them (codec) against
// Current and hands the store plain data, with the base hash in
// PartialHeader so that the base is checked again atomically at commit
// (ErrBaseMismatch).
//
// Errors are the sentinels in store.go's var block, wrapped with context;
// test with errors.Is.
//
// # Caveats
//
//   - One process at a time: bbolt locks the file; Open waits
//     Config.OpenTimeout for the lock.
//   - Open refuses files it can tell are damaged (bad meta pages, truncated
//     below bbolt's high water mark, not an edge-sync store, newer format).
//     Damage deeper inside the file is only found by Config.VerifyOnOpen
//     (a full bbolt consistency check) or when a damaged record is read
//     (ErrCorrupt); bbolt can still fault on some damaged branch pages.
//     Damaged object data is found by its SHA-256 when an Object is read
//     in order to its end (ErrCorrupt, and none of the last read's bytes);
//     see docs/integrity.md.
//   - An Object whose version is replaced while it is read fails with
//     ErrNotFound rather than returning mixed data.
//   - Quota counts stored bytes plus what partial ops reserve: the declared
//     size of an op while a stream receives it, only the bytes it holds
//     once that stream has ended without a commit (ReleasePartial: its
//     connection closed, or it sat idle past the frame timeout) and after
//     a restart. A resumed op reserves its declared size again. A state
//     op is credited with the size of the version it replaces.
//   - The applied-op index is bounded: an op redelivered after its ID has
//     aged out is applied again. Size AppliedMaxAge above the agents'
//     longest possible outage plus op TTL.
package core
