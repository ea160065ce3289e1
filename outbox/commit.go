package outbox

import (
	"errors"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// committer is the outbox's group commit: callers queue a write function;
// one of them (the leader) runs every queued function in a single bbolt
// transaction, so one fsync covers them all. Unlike bolt.DB.Batch it has no
// timer: a lone writer commits at once, and writers that arrive while a
// commit is running share the next one. No goroutine of its own.
//
// Functions must be idempotent: if a shared transaction fails, each
// function is run again alone so that one bad write fails only its caller.
type committer struct {
	db *bolt.DB

	mu    sync.Mutex
	queue []*commitReq
	busy  bool // a leader is committing
}

type commitReq struct {
	fn   func(*bolt.Tx) error
	err  error
	lead bool          // set when woken to become the next leader
	wake chan struct{} // buffered 1: done, or lead
}

var errSolo = errors.New("retry alone")

type soloErr struct{ err error }

func (e soloErr) Error() string { return e.err.Error() }
func (e soloErr) Unwrap() error { return errSolo }

// do runs fn in a shared write transaction and returns once it is durable.
func (c *committer) do(fn func(*bolt.Tx) error) error {
	r := &commitReq{fn: fn, wake: make(chan struct{}, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, r)
	if c.busy {
		c.mu.Unlock()
		<-r.wake
		if !r.lead {
			return r.err
		}
		c.mu.Lock()
	} else {
		c.busy = true
	}
	batch := c.queue
	c.queue = nil
	c.mu.Unlock()

	c.run(batch)

	c.mu.Lock()
	if len(c.queue) > 0 {
		// Hand over to the oldest waiter instead of serving everyone
		// forever, so no caller's latency grows without bound.
		next := c.queue[0]
		next.lead = true
		next.wake <- struct{}{}
	} else {
		c.busy = false
	}
	c.mu.Unlock()
	return r.err
}

func (c *committer) run(batch []*commitReq) {
	err := c.db.Update(func(tx *bolt.Tx) error {
		for _, r := range batch {
			if err := r.fn(tx); err != nil {
				return soloErr{err}
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		for _, r := range batch {
			r.err = c.db.Update(r.fn)
		}
	} else {
		var se soloErr
		if errors.As(err, &se) {
			err = se.err
		}
		for _, r := range batch {
			r.err = err
		}
	}
	for _, r := range batch {
		if !r.lead {
			r.wake <- struct{}{}
		}
	}
}
