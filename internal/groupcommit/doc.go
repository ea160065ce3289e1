// Package groupcommit runs the write transactions of concurrent callers
// as one, so that they share one commit and one fsync: the group commit
// of the agent's outbox and of the core's bolt store (docs/core.md,
// "Group commit").
//
// There is no wait for company: a caller of Group.Do that finds no
// transaction running runs its own at once, so a lone writer waits for
// nothing but its commit (bbolt's Batch waits up to 10 ms). Callers that
// arrive while one runs queue, and the first of them runs the queue as
// the next transaction once the running one has committed. Every caller
// returns only after the transaction holding its function has committed,
// so a nil error still means durable. No goroutine of its own: the
// callers run the transactions.
//
// A function that fails rolls back the whole transaction, as it would
// its own: it then runs alone, in a transaction of its own, for the same
// answer it would have had without grouping, and the others run again
// without it. A commit that fails (the disk) gives every function in it
// that error.
//
// # Caveats
//
//   - Functions must be idempotent: set their results afresh on each
//     call, as bbolt's Batch requires, for they may run more than once.
//   - A function that panics must be turned into an error by the run
//     function New is given; a panic that escapes it leaves the queued
//     callers waiting for ever.
package groupcommit
