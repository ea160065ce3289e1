package agent

import (
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/wire"
)

// A core whose store has no room refuses ops with wire.CodeStoreFull
// (docs/core.md, "When the store is full"). That is the core's state, not
// the op's: the endpoint keeps the refused op in the outbox and holds
// every op for a backoff (2 s, doubling up to 2 min); then one op goes
// alone as a trial, and only its ACK lets the rest follow. So a full core
// sees one attempt per backoff from each agent, not its whole backlog
// again and again, and the agent resumes by itself once there is room.
//
// A core that refuses an op busy (its frame memory is spent), internal (a
// failure of its own) or shutting-down (its store is closing) is in
// trouble of its own too, and gets the same hold, from a shorter first
// backoff (troubleBackoff, doubling up to maxTroubleBackoff): before, the
// agent sent the op again at once, hammering it. An ERROR that ends an op
// stream (or a pack) is that refusal too, of the first op it left
// unanswered, whatever its code (errorNack): before, the stream's ops went
// again at once, a storm of streams to a core in trouble.
//
// Only the hold's trial moves its backoff: a refusal of an op let go
// before the hold began (or last moved) is counted and changes nothing
// else, however late it comes. A trial the core refuses for a reason of
// the op's own (a quota, a delta's base) ends the hold: the core answered
// without its trouble. If the core refuses for its trouble again soon
// after (within the longest backoff), nothing was stored since, and the
// hold goes on where it was: its since, its refusals, its backoff
// doubled, as for a refused trial; it used to start again from the first
// backoff, a burst of ops after each such trial. A connection to another of the endpoint's
// addresses (failover) sends its trial at once, from the first backoff:
// that core is not known to be in trouble, and core_refusing shows
// nothing until it refuses (it showed the first core's refusals, since
// its first).

var (
	firstFullBackoff = 2 * time.Second
	maxFullBackoff   = 2 * time.Minute
	// fullLogEvery is the least time between two warnings that the core
	// still refuses.
	fullLogEvery = 10 * time.Minute
	// troubleBackoff and maxTroubleBackoff are the hold's bounds for a
	// core that refuses busy, internal or shutting-down.
	troubleBackoff    = 500 * time.Millisecond
	maxTroubleBackoff = 30 * time.Second
)

// CoreRefusal is transport.bandwidth.status's core_refusing: the core
// refuses to store ops for a reason of its own side (its store is full,
// it is busy, failing or shutting down), so the ops stay queued here
// until it takes them again.
type CoreRefusal struct {
	// Code is the core's reason code: "store-full", "busy", "internal"
	// or "shutting-down".
	Code string `json:"code"`
	// Since is the first refusal of the core at the address in use (a
	// hold carried on after a trial refused otherwise keeps it);
	// Refusals counts them since.
	Since    time.Time `json:"since"`
	Refusals int64     `json:"refusals"`
	// NextTry is when one op goes again as a trial.
	NextTry time.Time `json:"next_try"`
	// Message is the core's last message.
	Message string `json:"message"`
	// Explain says it in a sentence: what is wrong, whose side, what
	// happens to the data.
	Explain string `json:"explain"`
}

// coreFull is an endpoint's view of a core whose store is full. Safe for
// concurrent use: the session's workers report, status reads.
type coreFull struct {
	mu    sync.Mutex
	since time.Time // zero: the core stores
	until time.Time // no op goes before it
	// heldAt is when the hold began or its backoff last moved: the
	// refusal of an op let go before it is not its trial's answer.
	heldAt   time.Time
	backoff  time.Duration
	refusals int64
	msg      string
	code     wire.Code // the last refusal's
	addr     string    // the address of the core the hold is for
	// trial says a hold was on when the agent moved to the core at addr,
	// which has refused nothing yet: one op goes as its trial before the
	// rest.
	trial bool
	// ended is the hold that a trial refused for the op's own reason
	// ended, which a refusal for the core's trouble soon after carries on;
	// zero after a store, a move to another core, or another hold.
	ended endedHold
	// logged is the last warning; it outlives an episode, so that a
	// store at the brink that takes an op now and then does not make a
	// warning of each refusal. told says this episode was warned of.
	logged time.Time
	told   bool
}

// endedHold is a hold a trial refused otherwise ended, at at.
type endedHold struct {
	at, since time.Time
	backoff   time.Duration
	refusals  int64
	told      bool
}

// refused notes a refusal with code (store-full, busy, internal or
// shutting-down) at now of an op let go at sent. The first one starts the
// hold; one that answers the hold's trial doubles the backoff; those of
// ops let go before the hold began or last moved are only counted.
func (f *coreFull) refused(sent, now time.Time, code wire.Code, msg string, log hclog.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refusals++
	f.msg, f.code = msg, code
	first, most := firstFullBackoff, maxFullBackoff
	if code != wire.CodeStoreFull {
		first, most = troubleBackoff, maxTroubleBackoff
	}
	switch {
	case f.since.IsZero() && !f.ended.at.IsZero() && now.Sub(f.ended.at) < most:
		// The core answered the last trial without its trouble, but has it
		// again: the hold goes on.
		e := f.ended
		f.since, f.backoff, f.refusals, f.told = e.since, min(max(2*e.backoff, first), most), e.refusals+1, e.told
		f.ended = endedHold{}
	case f.since.IsZero():
		f.since, f.backoff, f.trial, f.ended = now, first, false, endedHold{}
	case sent.Before(f.heldAt):
		return // let go before the hold began or last moved: not its trial
	default:
		f.backoff = min(max(2*f.backoff, first), most)
	}
	f.heldAt, f.until = now, now.Add(f.backoff)
	if !f.logged.IsZero() && now.Sub(f.logged) < fullLogEvery {
		return
	}
	f.logged, f.told = now, true
	log.Warn("the core refuses to store ops: "+refusalCause(code)+"; the ops stay queued in the outbox and go again by themselves once it takes them",
		"code", code.String(), "core_message", msg, "address", f.addr, "since", f.since.Format(time.RFC3339),
		"refusals", f.refusals, "next_try_in", f.backoff.String())
}

// stored notes an op the core stored: it has room again.
func (f *coreFull) stored(log hclog.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trial, f.ended = false, endedHold{}
	if f.since.IsZero() {
		return
	}
	if f.told {
		log.Info("the core stores again; the queued ops follow", "full_for", time.Since(f.since).Round(time.Second).String(),
			"refusals", f.refusals)
	}
	f.endLocked()
}

// answered notes that the core refused an op let go at sent for a reason
// of the op's own (code: a quota, a delta's base, ...), not its trouble.
// If the op was the hold's trial, the core answered it without its
// trouble, and the hold ends: core_refusing would say what the core no
// longer says. A refusal of its trouble starts a new one.
func (f *coreFull) answered(sent time.Time, code wire.Code, log hclog.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trial = false
	if f.since.IsZero() || sent.Before(f.heldAt) {
		return
	}
	if f.told {
		log.Info("the core answered the trial without its trouble; the queued ops follow", "refused", code.String(),
			"held_for", time.Since(f.since).Round(time.Second).String(), "refusals", f.refusals)
	}
	ended := endedHold{at: time.Now(), since: f.since, backoff: f.backoff, refusals: f.refusals, told: f.told}
	f.endLocked()
	f.ended = ended
}

// endLocked ends the hold; logged stays, to space the warnings.
func (f *coreFull) endLocked() {
	f.since, f.until, f.heldAt, f.backoff, f.refusals, f.msg, f.told, f.trial = time.Time{}, time.Time{}, time.Time{}, 0, 0, "", false, false
	f.ended = endedHold{}
}

// connected notes a connection at now to the core at addr. A hold for
// the core at another address does not hold this one, which has refused
// nothing: the hold ends, one op goes to it at once as its trial, a
// refusal of that starts its own hold from the first backoff, and its
// first refusal is warned of.
func (f *coreFull) connected(addr string, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if addr != f.addr && !f.since.IsZero() {
		f.endLocked()
		f.trial, f.heldAt, f.logged = true, now, time.Time{}
	}
	if addr != f.addr {
		f.ended = endedHold{} // that core's, not this one's
	}
	f.addr = addr
}

// coreTrouble reports whether a refusal with code is the core's trouble
// (its store full, busy, failing, shutting down), which holds every op.
func coreTrouble(code wire.Code) bool {
	switch code {
	case wire.CodeStoreFull, wire.CodeBusy, wire.CodeInternal, wire.CodeShuttingDown:
		return true
	}
	return false
}

// errorNack is the refusal of op id that err stands for when it is an
// ERROR frame that ended the op's stream: sending the op again at once
// would only meet it again, whatever its code, so it is settled as the
// NACK of that code would be (session.refused): the core's trouble
// (coreTrouble) holds every op, a refusal of the op's own parks it or
// sends it again in full. Else nil: the stream broke, the op goes again.
// Only ERROR frames the core sent are *wire.ProtocolError in the sender
// (wire.ErrorFromCode).
func errorNack(id edgesync.OpID, err error) *wire.Nack {
	pe, ok := errors.AsType[*wire.ProtocolError](err)
	if !ok {
		return nil
	}
	return &wire.Nack{ID: id, Code: pe.Code, Msg: pe.Msg}
}

// backoffNow is the hold's backoff, or the first one a core in trouble
// gets when no hold is on.
func (f *coreFull) backoffNow() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() || f.backoff <= 0 {
		return troubleBackoff
	}
	return f.backoff
}

// refusalCause says whose trouble a refusal with code is.
func refusalCause(code wire.Code) string {
	switch code {
	case wire.CodeStoreFull:
		return "its store is full, on the core's side"
	case wire.CodeBusy:
		return "it is busy (its memory for frames in flight is spent), on the core's side"
	case wire.CodeShuttingDown:
		return "it is shutting down, on the core's side"
	}
	return "it failed internally, on the core's side (its log says why)"
}

// held reports whether no op may start at now with inflight ops in
// flight: during the hold, and after it while the trial is in flight (so
// too the trial of a core moved to during a hold); until is when the
// hold ends.
func (f *coreFull) held(now time.Time, inflight int) (held bool, until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	on := !f.since.IsZero() || f.trial
	return on && (now.Before(f.until) || inflight > 0), f.until
}

// status is the refusal for transport.bandwidth.status, nil while the
// core stores.
func (f *coreFull) status() *CoreRefusal {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.since.IsZero() {
		return nil
	}
	why := "the core's store has no room (on the core's side: its operator frees space there)"
	if f.code != wire.CodeStoreFull {
		why = "the core refuses ops: " + refusalCause(f.code)
	}
	return &CoreRefusal{Code: f.code.String(), Since: f.since, Refusals: f.refusals, NextTry: f.until, Message: f.msg,
		Explain: why + "; the ops stay queued in this outbox " +
			"and go by themselves once the core takes them again, one op each backoff until then"}
}

// fullWake wakes a session when the hold of a full core ends. Only the
// session's loop uses it; the session's finish stops it.
type fullWake struct {
	timer *time.Timer
	at    time.Time
}

func (w *fullWake) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// fullHeld reports whether the core's refusals hold every op now; it
// has the session woken when the hold ends. Not held, the ops started
// next are let go now (session.letGo).
func (s *session) fullHeld() bool {
	now := time.Now()
	held, until := s.e.full.held(now, s.inflight[slotUrgent]+s.inflight[slotSmall]+s.inflight[slotBulk])
	if held && now.Before(until) && !until.Equal(s.fullWake.at) {
		s.fullWake.stop()
		s.fullWake.timer, s.fullWake.at = time.AfterFunc(until.Sub(now), func() { s.e.wakeUp(edgesync.Critical) }), until
	}
	if !held {
		s.letGo = now
	}
	return held
}

// refusedFull settles an op let go at sent and refused for a reason of
// the core's own (store-full, busy or shutting-down): the endpoint holds
// every op for a backoff, and the op goes back to the outbox from the
// session's loop (outGiveBack), which has the hold by then. Its worker gave
// it back before noting the refusal: a loop woken in between (an op
// enqueued, an op's data written) saw no hold and sent it again at once.
func (s *session) refusedFull(n *wire.Nack, sent time.Time) outcome {
	s.stats.retries.Add(1)
	s.e.full.refused(sent, time.Now(), n.Code, n.Msg, s.log)
	return outGiveBack
}
