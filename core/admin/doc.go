// Package admin is the core's admin API: read-only views of the store for
// `edge-sync core ls`, `get` and `tail` (and any local tool) while the core
// runs, served on a unix socket of mode 0600 (DATA_DIR/core.sock) because
// bbolt's file lock keeps a second process out of the store.
//
//	GET /v1/agents
//	GET /v1/keys?agent=A&prefix=P&limit=N        default limit 1000
//	GET /v1/get?agent=A&key=K                    the data, with X-Edge-Sync-* headers
//	GET /v1/events?agent=A&from=SEQ&limit=N      default limit 100
//	GET /v1/event?agent=A&seq=SEQ                an event's payload, with X-Edge-Sync-* headers
//	GET /v1/summaries?agent=A&prefix=P&limit=N   default limit 1000
//	GET /v1/stats
//	GET /v1/agents/live                          the running core's figures of each agent (WithLiveAgents)
//
// Limits are capped at MaxLimit. Errors are {"error": "..."} with 404 for
// what does not exist and 400 for a malformed parameter.
//
// # Main types
//
//   - [Server] (NewServer, Serve, Close) serves [Handler] on the socket.
//     Serve runs once; Close waits until it has returned and the socket
//     is gone (docs/architecture.md#lifecycle).
//   - [Reader] is what the API offers, as Go methods. [Client] reads it
//     from a running core; [StoreReader] reads the same views straight
//     from a store the caller opened; [SocketOrStore] asks the core while
//     one runs and reads its store file when none does.
//
// # Caveats
//
//   - Reading the store file directly needs the core stopped: while it
//     runs, bbolt's lock makes the read wait (2 s) and fail.
//   - The answers' JSON shapes are those of the store's types (Summary and
//     Stats have snake_case keys, as every answer of edge-sync does).
package admin
