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
// Concurrent Enqueues (and Acks) share one bbolt transaction and one fsync
// (group commit, see committer): a lone producer commits at once, producers
// that arrive during a commit share the next one.
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
//   - A damaged file gives [ErrCorrupt], a bbolt file of another program
//     [ErrForeign], a newer format [ErrVersion]; Open writes nothing to such
//     a file. Damage inside payload bytes is not detected here (the codec's
//     hashes catch it end to end).
package outbox
