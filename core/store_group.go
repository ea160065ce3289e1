package core

import (
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
)

// Group commit (docs/core.md, "Group commit"): the write transactions of
// concurrent callers run in one bbolt transaction, so that a hundred
// agents' ops share one fsync instead of paying one each. The mechanism,
// and how a failing function is isolated, is internal/groupcommit's; the
// store gives it updateTx, which turns panics and memory faults into
// ErrCorrupt and keeps the journal's index true. A function passed to
// update may run more than once, so it must be idempotent (set its
// results afresh on each call), as bbolt's Batch requires.

// maxGroup bounds the functions in one transaction (a thousand agents
// waiting fill it, as they fill bbolt's Batch), and maxGroupBytes the
// data they write, and so what a transaction holds in dirty pages; a
// function over it runs alone.
const (
	maxGroup      = 1024
	maxGroupBytes = 8 << 20
)

// update runs fn in a write transaction shared with concurrent callers
// and returns once it has committed. bbolt rolls the transaction back if
// a function panics; damaged pages can make bbolt panic or, through its
// memory map, fault, and both are turned into ErrCorrupt so that one bad
// record does not take the core down.
func (s *Store) update(fn func(*bolt.Tx) error) error { return s.group.Do(fn) }

// updateSized is update for a function that writes about size bytes of
// data.
func (s *Store) updateSized(size int, fn func(*bolt.Tx) error) error {
	return s.group.DoSized(size, fn)
}

// updateTx runs fn in a write transaction of its own, guarded as update
// documents. Write transactions run one at a time here, so the journal's
// index in memory changes with them: when one that changed it does not
// commit, the index is read again from the file (store_journal.go).
func (s *Store) updateTx(fn func(*bolt.Tx) error) (err error) {
	s.jnl.txMu.Lock()
	defer s.jnl.txMu.Unlock()
	s.jnl.dirty = false
	err = s.updateTxGuarded(fn)
	if err != nil && s.jnl.dirty {
		s.journalRolledBack()
	}
	s.jnl.dirty = false
	return err
}

func (s *Store) updateTxGuarded(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	return s.db.Update(fn)
}
