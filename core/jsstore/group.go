package jsstore

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Group publishing (docs/jetstream.md, "Connections"): the writes of
// concurrent ops' commits (applied entries, events, state entries) go to
// JetStream in groups. The first op to publish on a connection while none
// is publishing there leads: it sends every write queued on that
// connection at once, each with a reply subject of the connection's
// (acks.go), waits for their acknowledgements together, hands each op
// its own, and passes the lead
// to the first op that queued meanwhile. One socket write and one wait
// serve the group, where each op alone paid a request's round trip, its
// syscalls and a turn at the connection's lock. Nothing runs in the
// background: a group is led by an op that waits anyway.
//
// Each write keeps the guarantees of a single publish: it is sent only if
// its context has not ended (an event's publish deadline, see apply.go,
// holds), and its caller learns its own acknowledgement or error, after
// JetStream acknowledged it at the configured replication.

// group is one connection's queue of writes.
type group struct {
	mu      sync.Mutex
	queue   []*groupWrite
	leading bool
}

// groupWrite is one op's write and where its result goes.
type groupWrite struct {
	ctx  context.Context
	pre  *nats.Msg // sent just before msg, without a reply: a batch's first message
	msg  *nats.Msg
	wait *waiter     // its caller's, shared by the writes it queued together
	res  groupResult // the result, once enqueueAll returned

	id      uint64      // its reply's number (acks.go)
	settled atomic.Bool // its reply came, or its leader gave up on it
}

type groupResult struct {
	ack *jetstream.PubAck
	err error
}

// waiter is where the caller of enqueueAll learns that each of its
// writes has its result, or that it leads the next group: one wake for
// its writes together, not one each.
type waiter struct {
	left atomic.Int32 // writes without their result yet
	// done says that every write has its result (false) or that the
	// caller leads the next group (true); with room for both, so that
	// neither sender blocks. A caller is handed the lead at most once,
	// its writes being in one group.
	done chan bool
}

// finish hands the write its result.
func (w *groupWrite) finish(r groupResult) {
	w.res = r
	if w.wait.left.Add(-1) == 0 {
		w.wait.done <- false
	}
}

// publish writes msg through c's group and returns its acknowledgement.
// What a jetstream.PublishOpt would say goes in msg's headers
// (expectLastSubjSeq, msgID).
func (s *Store) publish(ctx context.Context, c *opConn, msg *nats.Msg) (*jetstream.PubAck, error) {
	return s.enqueue(c, &groupWrite{ctx: ctx, msg: msg})
}

// expectLastSubjSeq is jetstream.WithExpectLastSequencePerSubject(seq):
// msg is stored only if its subject's last message is seq (0: none).
func expectLastSubjSeq(msg *nats.Msg, seq uint64) *nats.Msg {
	putHeader(msg, jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(seq, 10))
	return msg
}

// msgID is jetstream.WithMsgID(id).
func msgID(msg *nats.Msg, id string) *nats.Msg {
	putHeader(msg, jetstream.MsgIDHeader, id)
	return msg
}

func putHeader(msg *nats.Msg, name, value string) {
	if msg.Header == nil {
		msg.Header = nats.Header{}
	}
	msg.Header[name] = []string{value}
}

// publishBatch writes a two-message atomic batch through c's group: first
// without a reply, then commit, right after it on the same connection, so
// that nothing comes between them; the acknowledgement is the commit's.
// A refused first message makes the commit fail (the server answers it
// as an incomplete batch, or with the first message's refusal).
func (s *Store) publishBatch(ctx context.Context, c *opConn, first, commit *nats.Msg) (*jetstream.PubAck, error) {
	return s.enqueue(c, &groupWrite{ctx: ctx, pre: first, msg: commit})
}

func (s *Store) enqueue(c *opConn, w *groupWrite) (*jetstream.PubAck, error) {
	s.enqueueAll(c, []*groupWrite{w})
	return w.res.ack, w.res.err
}

// enqueueAll queues ws on c's group together and in their order, so that
// they are sent in one group, one after another on the connection, and
// returns once each has its result (res): the writes of several ops
// that need not wait for each other (applyops.go). They share one
// waiter, which wakes their caller once they all have their results.
func (s *Store) enqueueAll(c *opConn, ws []*groupWrite) {
	if len(ws) == 0 {
		return // nothing to lead: taking the lead would keep it for ever
	}
	wait := &waiter{done: make(chan bool, 2)}
	wait.left.Store(int32(len(ws)))
	for _, w := range ws {
		w.wait = wait
	}
	g := &c.group
	g.mu.Lock()
	g.queue = append(g.queue, ws...)
	leading := !g.leading
	g.leading = true
	g.mu.Unlock()
	if leading {
		s.leadGroup(c)
	}
	// A leader takes the whole queue: ws go in one group, so only the
	// first can be handed the lead, before any has its result. The
	// leader answers within a round trip of the group ahead and one of
	// ours, each bounded by the store's timeout.
	for <-wait.done {
		s.leadGroup(c)
	}
	for _, w := range ws {
		w.res.err = s.full(w.msg.Subject, w.res.err) // says what to do if JetStream is full
	}
}

// leadGroup sends the writes queued on c as one group and hands the lead
// to the first write queued meanwhile.
func (s *Store) leadGroup(c *opConn) {
	g := &c.group
	g.mu.Lock()
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()

	s.publishGroup(c, batch)

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].wait.done <- true
	} else {
		g.leading = false
	}
	g.mu.Unlock()
}

// maxGroupWrites bounds the writes of a group sent before their
// acknowledgements are awaited: the ops of streams of several
// (applyops.go) fill groups of many thousands at 1,000 agents, and all
// of them unanswered at once would hold that many replies pending in
// the server and in the connection's subscription (nats.go's
// PublishMsgAsync, which the group used before acks.go, refused more
// than 4,000).
const maxGroupWrites = 2048

// publishGroup sends the writes of batch, at most maxGroupWrites at once,
// and hands each its acknowledgement or error.
func (s *Store) publishGroup(c *opConn, batch []*groupWrite) {
	for len(batch) > 0 {
		n := min(len(batch), maxGroupWrites)
		s.publishPart(c, batch[:n])
		batch = batch[n:]
	}
}

// publishPart sends every write of batch at once and hands each its
// acknowledgement or error (acks.go): each reply hands its write its
// result, and publishPart waits until each has one, within its context
// and the store's timeout.
func (s *Store) publishPart(c *opConn, batch []*groupWrite) {
	// Each write's wait starts before it is sent, as nats.go's timer
	// of an asynchronous publish did: the timeout bounds a publish in
	// flight (docs/jetstream.md, "Exactly once").
	timeout := time.NewTimer(s.cfg.Timeout)
	defer timeout.Stop()
	r := newReplies()
	sent := batch[:0:0]
	for _, w := range batch {
		err := w.ctx.Err()
		if err == nil && w.pre != nil {
			err = c.nc.PublishMsg(w.pre)
		}
		if err == nil {
			err = c.acks.send(w, r)
		}
		if err != nil {
			w.finish(groupResult{err: err})
			continue
		}
		sent = append(sent, w)
	}
	giveUp := func(w *groupWrite, err error) {
		if c.acks.take(w) { // else its reply came meanwhile
			w.finish(groupResult{err: err})
		}
	}
	for i, w := range sent {
		r.waiting.Store(w.id)   // then settled is checked: a reply after the check wakes us
		for !w.settled.Load() { // a reply that came wins over the timeout
			select {
			case <-r.wake:
			case <-w.ctx.Done():
				giveUp(w, fmt.Errorf("no acknowledgement: %w", w.ctx.Err()))
			case <-timeout.C:
				for _, w := range sent[i:] { // the rest have had as long
					giveUp(w, fmt.Errorf("no acknowledgement within %v: %w", s.cfg.Timeout, context.DeadlineExceeded))
				}
			}
		}
	}
}
