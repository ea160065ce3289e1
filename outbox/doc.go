// Package outbox is the durable, bounded priority queue of operations that
// wait on the edge for a link, stored in one bbolt file.
//
// # Basics
//
// [Open] opens (or creates) the file; [Outbox.Enqueue] stores a [NewOp] and
// returns its [Op] once it is fsynced. The payload is streamed from an
// io.Reader into chunks of 1 MiB and is never held whole in memory; the
// sender reads any byte range back with [Outbox.OpenPayload] and
// [Payload.ReadAt], so it can send and resume in pieces.
//
// The sender takes work with [Outbox.Lease] (priority order critical to
// background, FIFO by ID within a priority, one queue per endpoint), and
// finishes it with [Outbox.Ack] (durable delete) or [Outbox.Release].
// Leases live in memory only: after a crash every unacked op is offered
// again, so delivery is at-least-once and the receiver de-duplicates by ID.
//
// The outbox is bounded by Options.MaxOps and Options.MaxBytes. When a new
// op does not fit, it evicts the oldest ops of the lowest priority present,
// but only of a priority strictly lower than its own; otherwise Enqueue
// returns [ErrFull] and nothing is dropped. A state op
// ([edgesync.StateOp]) supersedes older unleased state ops of the same
// endpoint and key; event ops ([edgesync.EventOp]) are never superseded. [Outbox.PurgeExpired] removes ops whose TTL ended. Every drop
// is reported as a [Drop] on [Outbox.Drops] and counted in [Stats].
//
// # Integrity
//
// Enqueue takes the SHA-256 of the payload as it reads it from the
// producer, before anything is written, and stores it in the op's record
// ([Op.Hash]); the sender puts it in the OP_HEADER and the core checks the
// bytes it stores against it. Each chunk is written with a CRC-32C per
// 16 KiB block, and each record with a CRC-32C; [Payload.ReadAt] checks
// the blocks it returns, Open checks every record. An op that fails a
// check is quarantined: moved out of the send queue into a quarantine
// bucket with the reason (its bytes stay for forensics), reported on
// Drops as [ReasonDamaged], counted in Stats.Quarantined and logged once;
// the rest of the outbox goes on. [Outbox.Verify] reads every op now,
// [VerifyFile] checks a file no one has open, [Outbox.PurgeQuarantined]
// deletes quarantined ops. See docs/outbox.md#integrity.
//
// Concurrent Enqueues (and Acks) share one bbolt transaction and one fsync
// (group commit, internal/groupcommit): a lone producer commits at once,
// producers that arrive during a commit share the next one.
//
// # Caveats
//
//   - The metadata of every stored op (not its payload) is kept in memory;
//     MaxOps bounds it. Open reads and checks all of it.
//   - A payload larger than 4 MiB is written in several transactions under a
//     pending marker and published in the last one; a crash in between
//     leaves chunks that the next Open deletes. Such a payload is checked
//     against MaxBytes only once it has been read, so it may briefly use
//     more disk than MaxBytes.
//   - Eviction, supersede and TTL expiry may drop an op that is leased
//     (supersede never does); its Ack is then a no-op and ReadAt returns
//     [ErrNotFound].
//   - Drops are delivered without blocking: when the channel's buffer
//     (Options.DropBuffer) is full, the drop is counted in
//     Stats.DropsUnreported and not sent. Drop counters restart at Open.
//   - bbolt copies on write, so deleting needs free pages too. Enqueue keeps
//     headroom (256 KiB + 1/64 of the file) below Options.MaxFileSize and
//     the file system's free space and fails with [ErrNoSpace] before that,
//     so that Ack keeps working on a full disk.
//   - A file whose bbolt structure is damaged gives [ErrCorrupt], a bbolt
//     file of another program [ErrForeign], a newer format [ErrVersion];
//     Open writes nothing to such a file. Damage that only changes an op's
//     record or payload bytes quarantines that op ([ErrDamaged]).
//   - Ops stored by format version 1 (before checksums) have no hash and
//     no checksums: Open upgrades such a file in place, and its old ops
//     are read without checks (the sender hashes what it reads).
package outbox
