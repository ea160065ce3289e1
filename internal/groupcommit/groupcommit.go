package groupcommit

import "sync"

// Group runs the functions of concurrent callers in shared transactions
// of type T (*bolt.Tx for the stores). The zero Group is not usable; make
// one with New.
type Group[T any] struct {
	run      func(fn func(T) error) error
	maxFuncs int
	maxBytes int

	mu      sync.Mutex
	queue   []*request[T]
	running bool // a leader is running transactions
}

// request is one caller's function and, once done is closed, its error;
// lead says the caller was woken to run the queue, not with its result.
type request[T any] struct {
	fn   func(T) error
	size int // the bytes fn writes, roughly
	err  error
	lead bool
	done chan struct{}
}

// New returns a Group whose transactions run passes each to its function
// in a write transaction of its own and returns once that has committed
// (bbolt's DB.Update, or a guarded wrapper of it). maxFuncs bounds the
// functions in one transaction and maxBytes the bytes they write, and so
// what a transaction holds in dirty pages; a function over maxBytes runs
// alone. Zero means no bound.
func New[T any](run func(fn func(T) error) error, maxFuncs, maxBytes int) *Group[T] {
	return &Group[T]{run: run, maxFuncs: maxFuncs, maxBytes: maxBytes}
}

// Do runs fn in a transaction shared with concurrent callers and returns
// fn's error, or the commit's, once the transaction has committed.
func (g *Group[T]) Do(fn func(T) error) error { return g.DoSized(0, fn) }

// DoSized is Do for a function that writes about size bytes.
func (g *Group[T]) DoSized(size int, fn func(T) error) error {
	r := &request[T]{fn: fn, size: size, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, r)
	leading := !g.running
	g.running = true
	g.mu.Unlock()
	g.await(r, leading)
	return r.err
}

// DoAll runs fns, whose sizes are sizes (nil: none given), as if each
// were the function of a caller of DoSized, queued together and in their
// order: one transaction holds them all unless the bounds split them, a
// failing one is isolated as any other, and those that commit keep their
// order. It returns each function's error once all have committed.
func (g *Group[T]) DoAll(sizes []int, fns []func(T) error) []error {
	if len(fns) == 0 {
		return nil
	}
	rs := make([]*request[T], len(fns))
	g.mu.Lock()
	for i, fn := range fns {
		rs[i] = &request[T]{fn: fn, done: make(chan struct{})}
		if sizes != nil {
			rs[i].size = sizes[i]
		}
		g.queue = append(g.queue, rs[i])
	}
	leading := !g.running
	g.running = true
	g.mu.Unlock()
	errs := make([]error, len(rs))
	for i, r := range rs {
		// Only the first can start as the leader: the queue was empty.
		g.await(r, leading && i == 0)
		errs[i] = r.err
	}
	return errs
}

// await returns once r's function has committed or failed. A caller that
// found no transaction running (leading), or that was handed the lead,
// runs the queue, r at its head, as the next transaction.
func (g *Group[T]) await(r *request[T], leading bool) {
	if !leading {
		<-r.done
		if !r.lead {
			return
		}
	}
	// Leader: take the queue (this caller's request is at its head) and
	// run it.
	g.mu.Lock()
	n, bytes := 1, g.queue[0].size
	for n < len(g.queue) && (g.maxFuncs <= 0 || n < g.maxFuncs) &&
		(g.maxBytes <= 0 || bytes+g.queue[n].size <= g.maxBytes) {
		bytes += g.queue[n].size
		n++
	}
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()
	g.runBatch(batch)
	// Hand the lead to the first caller that queued meanwhile before
	// answering this batch, so that the next transaction starts at once
	// and no caller's wait grows without bound.
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
}

// runBatch runs batch in one transaction and sets each request's error.
// When a function fails, it runs alone for its own error and the rest
// run again, in their order; each round takes one function out, so it
// ends.
func (g *Group[T]) runBatch(batch []*request[T]) {
	for len(batch) > 0 {
		if len(batch) == 1 {
			batch[0].err = g.run(batch[0].fn)
			return
		}
		cur, all := 0, false
		err := g.run(func(tx T) error {
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
		g.runBatch(batch[:cur])
		batch[cur].err = g.run(batch[cur].fn)
		batch = batch[cur+1:]
	}
}
