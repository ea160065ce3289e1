package core

import (
	"runtime/debug"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Group commit (docs/core.md, "Group commit"): the write transactions of
// concurrent callers run in one bbolt transaction, so that a hundred
// agents' ops share one fsync instead of paying one each. There is no
// wait for company: a caller that finds no transaction running runs its
// own at once (one agent sees no added latency); callers that arrive
// while one runs queue, and the first of them runs the queue as the next
// transaction when it ends. Every caller returns only after the
// transaction holding its change has committed, fsync included, so an
// acknowledgement still means durable.
//
// A function that fails rolls back the whole transaction, as it would its
// own: it then runs alone, in a transaction of its own, for the same
// result as without grouping, and the others run again without it. The
// functions passed to update must therefore be idempotent (set their
// results afresh on each call), as bbolt's Batch requires.
type groupCommit struct {
	mu      sync.Mutex
	queue   []*groupReq
	running bool // a leader is running transactions
}

// groupReq is one caller's function and, once done is closed, its error;
// lead says the caller was woken to run the queue, not with its result.
type groupReq struct {
	fn   func(*bolt.Tx) error
	size int // the bytes fn writes, roughly (its data)
	err  error
	lead bool
	done chan struct{}
}

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
func (s *Store) update(fn func(*bolt.Tx) error) error { return s.updateSized(0, fn) }

// updateSized is update for a function that writes about size bytes of
// data.
func (s *Store) updateSized(size int, fn func(*bolt.Tx) error) error {
	g := &s.group
	r := &groupReq{fn: fn, size: size, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	if g.running {
		g.mu.Unlock()
		<-r.done
		if !r.lead {
			return r.err
		}
	} else {
		g.running = true
		g.mu.Unlock()
	}
	// Leader: take the queue (this caller's request is in it) and run it.
	g.mu.Lock()
	n, bytes := 1, g.queue[0].size
	for n < len(g.queue) && n < maxGroup && bytes+g.queue[n].size <= maxGroupBytes {
		bytes += g.queue[n].size
		n++
	}
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()
	s.runGroup(batch)
	// Hand the lead to the first caller that queued meanwhile before
	// answering this batch, so that the next transaction starts at once.
	g.mu.Lock()
	if len(g.queue) > 0 {
		next := g.queue[0]
		next.lead = true
		close(next.done)
	} else {
		g.running = false
		g.queue = nil
	}
	g.mu.Unlock()
	for _, q := range batch {
		if q != r {
			close(q.done)
		}
	}
	return r.err
}

// runGroup runs batch in one transaction and sets each request's error.
// When a function fails, it runs alone for its own error and the rest
// run again, in their order; each round takes one function out, so it
// ends.
func (s *Store) runGroup(batch []*groupReq) {
	for len(batch) > 0 {
		if len(batch) == 1 {
			batch[0].err = s.updateTx(batch[0].fn)
			return
		}
		cur, all := 0, false
		err := s.updateTx(func(tx *bolt.Tx) error {
			for cur = range batch {
				if err := batch[cur].fn(tx); err != nil {
					return err
				}
			}
			all = true
			return nil
		})
		if err == nil || all {
			// Committed, or the commit itself failed (the disk): the same
			// answer for every function in it.
			for _, q := range batch {
				q.err = err
			}
			return
		}
		// batch[cur] failed or panicked: nothing of the transaction was
		// written. Those before it run again as a group, it alone, then
		// the rest.
		s.runGroup(batch[:cur])
		batch[cur].err = s.updateTx(batch[cur].fn)
		batch = batch[cur+1:]
	}
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
