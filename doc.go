// Package edgesync holds the small domain types that every part of edge-sync
// shares: operation priorities and kinds, link classes, sync modes and
// operation IDs.
//
// It imports nothing beyond the standard library but internal/enum (the
// text form of its enums, shared with codec), so that outbox, wire,
// linkmon, codec, config, agent and core can all speak the same vocabulary
// without depending on one another.
//
// # Main types
//
//   - [Priority]: critical (0) to background (5); lower goes first.
//   - [OpKind]: event (1, every one delivered) or state (2, a keyed update
//     the next version supersedes); zero is no kind.
//   - [LinkClass]: what the link monitor calls the link (fiber, broadband,
//     mobile, satellite, intermittent, unknown).
//   - [SyncMode]: how the sender sends under a link class (full, full+zstd,
//     delta, delta+zstd, store-and-forward).
//   - [OpID]: the unique, time-ordered identifier of an operation.
//
// All of them render themselves with String and parse with their Parse
// function, which return errors that name the bad value and the choices.
package edgesync
