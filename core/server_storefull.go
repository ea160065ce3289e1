package core

import (
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/wire"
)

// This file is what the core does when its store has no room for a write
// (docs/core.md, "When the store is full"): the op is refused with
// wire.CodeStoreFull, so that the agent keeps it and backs off; the core
// logs one ERROR a minute at most that says where the store is, how much
// room is left and what to do; /metrics shows it.

// ErrStoreFull is what a Backend's error wraps when the store has no room
// for a write: its disk is full, or it reached a size limit (a JetStream
// stream's or server's). The bbolt store's own errors for that (ENOSPC,
// EDQUOT, bbolt's ErrMaxSizeReached) count as it too. The server answers
// it with wire.CodeStoreFull.
var ErrStoreFull = errors.New("store full")

// storeFull reports whether err says that the store has no room.
func storeFull(err error) bool {
	return errors.Is(err, ErrStoreFull) || noRoom(err)
}

// Room is where a store keeps its data, the room left there, and what an
// operator does when it is full: the core's log line when a write finds
// no room.
type Room struct {
	// Where is the store's file, or its NATS streams.
	Where string
	// Free is the room left in bytes, -1 when unknown.
	Free int64
	// Action says what to do, in a sentence.
	Action string
}

// RoomReporter is implemented by a Backend that can say where it keeps
// its data and what to do when it is full (*Store, jsstore.Store).
type RoomReporter interface {
	Room() Room
}

// Room is the store's file, the room left on its file system, and what to
// do when that is none.
func (s *Store) Room() Room {
	r := Room{Where: s.path, Free: -1,
		Action: "free space on the store's file system (or raise its quota), or stop the core, move the store to a larger disk and point store.path at it; " +
			"the refused ops stay queued at their agents and arrive by themselves once there is room (docs/core.md, \"When the store is full\")"}
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(s.path), &st); err == nil {
		r.Free = int64(st.Bavail) * int64(st.Bsize)
	}
	return r
}

// storeFullLogEvery is the least time between two of the core's ERRORs
// about a full store.
var storeFullLogEvery = time.Minute

// fullStore follows the writes refused for want of room, for the log
// and /metrics. Safe for concurrent use.
type fullStore struct {
	refusals atomic.Int64 // since start
	full     atomic.Bool  // a write found no room, and none stored since

	mu sync.Mutex
	// logged is the last ERROR; it outlives an episode, so that a store
	// at the brink, which takes an op now and then, logs no more often.
	// told says this episode was logged.
	logged  time.Time
	told    bool
	since   time.Time // the first refusal since the store last stored
	pending int64     // refusals not yet in a log line
}

// refused counts a write refused for want of room and logs it, at most
// once per storeFullLogEvery.
func (f *fullStore) refused(log hclog.Logger, b Backend, err error) {
	f.refusals.Add(1)
	f.full.Store(true)
	now := time.Now()
	f.mu.Lock()
	if f.since.IsZero() {
		f.since = now
	}
	f.pending++
	if !f.logged.IsZero() && now.Sub(f.logged) < storeFullLogEvery {
		f.mu.Unlock()
		return
	}
	n, since := f.pending, f.since
	f.logged, f.pending, f.told = now, 0, true
	f.mu.Unlock()
	r := Room{Where: "the store", Free: -1, Action: "make room for the store"}
	if rr, ok := b.(RoomReporter); ok {
		r = rr.Room()
	}
	free := "unknown"
	if r.Free >= 0 {
		free = units.FormatBytes(r.Free)
	}
	log.Error("the store has no room: ops are refused (store-full) and stay queued at their agents",
		"store", r.Where, "free", free, "full_since", since.Format(time.RFC3339), "refused_since_last_log", n,
		"action", r.Action, "error", err)
}

// stored notes a write the store took: it has room again.
func (f *fullStore) stored(log hclog.Logger) {
	if !f.full.Load() || !f.full.CompareAndSwap(true, false) {
		return
	}
	f.mu.Lock()
	since, told := f.since, f.told
	f.since, f.told = time.Time{}, false
	f.mu.Unlock()
	if told {
		log.Info("the store has room again: ops are stored", "full_for", time.Since(since).Round(time.Second).String())
	}
}

// refusing notes err, an answer about to be sent, if it refuses an op
// for want of room.
func (h *opHandler) refusing(err error) {
	if wire.CodeOf(err) == wire.CodeStoreFull {
		h.stats.full.refused(h.log, h.store, err)
	}
}
