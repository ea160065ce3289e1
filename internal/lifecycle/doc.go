// Package lifecycle holds what a server with a blocking Serve loop keeps
// to follow the project's lifecycle convention
// (docs/architecture.md#lifecycle): Serve runs once, Close ends it and
// waits until it has returned, and nothing serves after Close. It also
// holds the first step of an idempotent Close.
//
// # Basics
//
// A Serving is that state; its zero value is ready. Serve calls Begin
// first, serves until the context Begin returns ends (at Close, or when
// Serve's own context ends), and calls the end function Begin returned as
// it returns. Close ends that context and waits for end; it reports
// whether Serve never ran, so that the server closes what Serve would
// have closed (its listeners). control.Server, core.Server and
// admin.Server are built on it.
//
// MarkClosed is the first step of a Close that is idempotent: it sets the
// value's closed flag under the value's mutex and reports whether this
// call set it, so that only the first Close goes on to stop what the value
// started. The outbox, the link monitor and the JetStream store use it.
//
// # Caveats
//
// Close waits for Serve without a bound: a Serve must return once its
// context ends (the servers give requests in flight a few seconds).
package lifecycle
