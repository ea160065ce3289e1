package jsstore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/edge-sync/edge-sync/core"
)

// What JetStream answers a write it has no room for, and how the core
// hears of it: as core.ErrStoreFull, which the core answers store-full, as
// it does the bbolt store's full disk (docs/jetstream.md, "When JetStream
// is full").
const (
	// errCodeInsufficientResources: the server's or the account's
	// JetStream storage (max_file_store) is used up.
	errCodeInsufficientResources jetstream.ErrorCode = 10023
	// errCodeStorageExceeded: a stream or bucket would need more storage
	// than the server or account has left.
	errCodeStorageExceeded jetstream.ErrorCode = 10047
	// errCodeStoreFailed: the stream refused the message; "maximum bytes
	// exceeded" and "maximum messages exceeded" are its own limits
	// (max_bytes, max_msgs with discard new).
	errCodeStoreFailed jetstream.ErrorCode = 10077
)

// noRoom reports whether err is JetStream refusing a write for want of
// room.
func noRoom(err error) bool {
	apiErr, ok := errors.AsType[*jetstream.APIError](err)
	if !ok {
		return false
	}
	switch apiErr.ErrorCode {
	case errCodeInsufficientResources, errCodeStorageExceeded:
		return true
	case errCodeStoreFailed:
		return strings.Contains(apiErr.Description, "maximum")
	}
	return false
}

// markFull makes *err wrap core.ErrStoreFull when it says JetStream has no
// room; the Backend's methods that write defer it.
func markFull(err *error) {
	if *err != nil && noRoom(*err) && !errors.Is(*err, core.ErrStoreFull) {
		*err = fmt.Errorf("%w: %w", core.ErrStoreFull, *err)
	}
}

// Room says where the store keeps its data and what to do when JetStream
// has no room; the room left is not known here (the server's or the
// account's limit, or a stream's).
func (s *Store) Room() core.Room {
	return core.Room{Where: fmt.Sprintf("JetStream streams %s_* and their buckets at %s", s.n.prefix, strings.Join(s.cfg.URLs, ",")), Free: -1,
		Action: "give JetStream room: raise the NATS server's max_file_store (or the account's limits) or free its disk; a stream's own max_bytes " +
			"must stay unlimited (docs/jetstream.md); the refused ops stay queued at their agents and arrive by themselves once there is room"}
}
