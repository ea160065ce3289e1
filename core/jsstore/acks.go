package jsstore

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// acks receives the acknowledgements of one connection's group writes
// (group.go) on a subscription of its own, rather than through nats.go's
// PublishMsgAsync, which made each write a future with two channels, a
// timer and a map entry keyed by a random text, and decoded each
// acknowledgement with encoding/json (docs/jetstream.md, "Connections and
// groups"). A write's reply subject is the connection's prefix and a
// number; the leader of its group waits for its reply (publishPart) with
// the timeout and the context PublishMsgAsync's caller had, and a write
// the stream had no responder for is sent again as PublishMsgAsync does.
type acks struct {
	nc     *nats.Conn
	prefix string // the reply subjects' prefix, up to the number
	sub    *nats.Subscription

	mu   sync.Mutex
	next uint64
	pend map[uint64]pendingAck
}

// pendingAck is a write sent and not yet answered.
type pendingAck struct {
	w       *groupWrite
	r       *replies // its group's
	retries int      // sent again after the stream had no responder
}

// replies is how the leader of a group (of a part of one: publishPart)
// learns that the write it waits for has its result: a reply wakes it
// only for that write, not at each reply.
type replies struct {
	waiting atomic.Uint64 // the ID of the write the leader waits for
	wake    chan struct{} // room for one: a reply never blocks on it
}

func newReplies() *replies { return &replies{wake: make(chan struct{}, 1)} }

// settled says that write id has its result (its settled flag is set).
func (r *replies) settled(id uint64) {
	if r.waiting.Load() == id {
		select {
		case r.wake <- struct{}{}:
		default: // a wake is there already
		}
	}
}

// Sending again a write the stream had no responder for (a stream
// electing its leader): as often and as late as nats.go's PublishMsgAsync.
const (
	noResponderRetries = jetstream.DefaultPubRetryAttempts
	noResponderWait    = jetstream.DefaultPubRetryWait
)

// start subscribes to the connection's reply subjects.
func (a *acks) start(nc *nats.Conn) error {
	a.nc = nc
	a.prefix = nc.NewInbox() + "."
	a.pend = make(map[uint64]pendingAck)
	var err error
	a.sub, err = nc.Subscribe(a.prefix+"*", a.handle)
	return err
}

// stop ends the subscription; closing the connection ends it too.
func (a *acks) stop() {
	if a.sub != nil {
		_ = a.sub.Unsubscribe() // fails only if the connection is closed: ended already
	}
}

// send publishes w.msg with a reply subject of its own; the reply hands
// w its result and tells r. On an error w was not sent, and its caller
// hands it the error.
func (a *acks) send(w *groupWrite, r *replies) error {
	a.mu.Lock()
	a.next++
	w.id = a.next
	a.pend[w.id] = pendingAck{w: w, r: r}
	a.mu.Unlock()
	w.msg.Reply = a.prefix + strconv.FormatUint(w.id, 10)
	if err := a.nc.PublishMsg(w.msg); err != nil && a.take(w) {
		return err
	}
	return nil // sent, or answered all the same: the reply has its result
}

// take gives up waiting for w's reply: true if it had none (the caller
// then hands w its result), false if its reply came first.
func (a *acks) take(w *groupWrite) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.pend[w.id]
	if ok {
		delete(a.pend, w.id)
		w.settled.Store(true)
	}
	return ok
}

// handle is a reply: a write's acknowledgement or its refusal.
func (a *acks) handle(m *nats.Msg) {
	tail, ok := strings.CutPrefix(m.Subject, a.prefix)
	id, err := strconv.ParseUint(tail, 10, 64)
	if !ok || err != nil {
		return
	}
	noResponder := len(m.Data) == 0 && m.Header.Get("Status") == "503"
	a.mu.Lock()
	p, ok := a.pend[id]
	if !ok {
		a.mu.Unlock()
		return // given up on: timed out, or its context ended
	}
	if noResponder && p.retries < noResponderRetries {
		p.retries++
		a.pend[id] = p
		a.mu.Unlock()
		time.AfterFunc(noResponderWait, func() { a.resend(p) })
		return
	}
	delete(a.pend, id)
	p.w.settled.Store(true)
	a.mu.Unlock()
	if noResponder {
		p.w.finish(groupResult{err: jetstream.ErrNoStreamResponse})
	} else {
		p.w.finish(pubResult(m.Data))
	}
	p.r.settled(id)
}

// resend sends p's write again, if it still waits for its reply.
func (a *acks) resend(p pendingAck) {
	a.mu.Lock()
	_, ok := a.pend[p.w.id]
	a.mu.Unlock()
	if !ok || p.w.ctx.Err() != nil {
		return // its leader gave up on it, or will at once
	}
	if err := a.nc.PublishMsg(p.w.msg); err != nil && a.take(p.w) {
		p.w.finish(groupResult{err: err})
		p.r.settled(p.w.id)
	}
}

// pubResult is the result a write's reply says: JetStream's
// acknowledgement, or its refusal as a *jetstream.APIError, as
// PublishMsgAsync made them. The server writes an acknowledgement as
// {"stream":"S","seq":N} or with ,"duplicate": true (stream.go); those
// are read here, anything else with encoding/json.
func pubResult(data []byte) groupResult {
	if ack, ok := quickAck(data); ok {
		return groupResult{ack: ack}
	}
	var r struct {
		Error *jetstream.APIError `json:"error"`
		*jetstream.PubAck
	}
	switch err := json.Unmarshal(data, &r); {
	case err != nil:
		return groupResult{err: jetstream.ErrInvalidJSAck}
	case r.Error != nil:
		return groupResult{err: r.Error}
	case r.PubAck == nil || r.Stream == "":
		return groupResult{err: jetstream.ErrInvalidJSAck}
	}
	return groupResult{ack: r.PubAck}
}

// quickAck reads the acknowledgements the server writes most, without
// reflection; false for any other text.
func quickAck(data []byte) (*jetstream.PubAck, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"stream":"`))
	if !ok {
		return nil, false
	}
	i := bytes.IndexByte(rest, '"')
	if i <= 0 || !plainJSONString(rest[:i]) {
		return nil, false
	}
	stream := rest[:i]
	rest, ok = bytes.CutPrefix(rest[i+1:], []byte(`,"seq":`))
	if !ok {
		return nil, false
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n > 1 && rest[0] == '0' {
		return nil, false // not JSON
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return nil, false
	}
	ack := &jetstream.PubAck{Stream: string(stream), Sequence: seq}
	switch string(rest[n:]) {
	case `}`:
	case `,"duplicate": true}`, `,"duplicate":true}`:
		ack.Duplicate = true
	default:
		return nil, false
	}
	return ack, true
}

// plainJSONString reports whether b, the text between a JSON string's
// quotes, is read by encoding/json as itself: valid UTF-8 with no escape
// and no control character (which encoding/json refuses; invalid UTF-8
// it reads as U+FFFD).
func plainJSONString(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == '\\' {
			return false
		}
	}
	return utf8.Valid(b)
}
