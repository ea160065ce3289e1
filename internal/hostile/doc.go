// Package hostile is a raw edge-sync/1 client for tests: it dials a core
// over real QUIC with a valid agent certificate and writes whatever frames,
// or bytes, a test asks for, in whatever order. It follows the protocol
// only as far as a test wants it to, so that tests can play a broken or
// hostile agent against a real core (in process or a real `edge-sync
// core`).
//
// # Basics
//
// Dial connects and exchanges Hello and Welcome on the control stream;
// Client.Open opens an op stream; Write writes frames, DataFrames makes
// an op's DATA frames and DataHead the head of a DATA frame whose body
// the caller sends (or does not). The attacks tests share are functions
// of their own: DataFirst (streams that open with a DATA frame),
// PartialData (valid op headers followed by a DATA frame that declares
// far more than it sends), HeadersOnly (DATA heads and no body),
// EarlyAnswers (headers the core refuses, the streams left open) and
// Resets (streams reset in the middle of a frame).
//
// # Caveats
//
// Tests only: nothing the project ships imports this package. It imports
// wire, codec and quic-go, never agent or core, so that the tests of
// either can use it.
package hostile
