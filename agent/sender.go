package agent

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// The sender's limits. Concurrency from the sync parameters bounds the
// large transfers (ops of more than one chunk), which share the link's
// bandwidth. Small ops are pipelined regardless, because each costs a round
// trip before its ACK and on a 600 ms link one at a time would send almost
// nothing. Critical and schema ops never wait for a slot of either kind.
const (
	maxSmallInFlight  = 32
	maxUrgentInFlight = 8
	// linkDownPoll is how often a held sender looks whether the link
	// answers again.
	linkDownPoll = 100 * time.Millisecond
)

var ordinary = []edgesync.Priority{edgesync.High, edgesync.Normal, edgesync.Analytics, edgesync.Background}

// outcome is how a worker's op ended, for the session's bookkeeping.
type outcome uint8

const (
	outDone outcome = iota // acked and removed, or released for a retry
	outHold                // summary stored: keep leased, its full data backfills
	outPark                // refused for now: keep leased for a backoff (parked.go)
	// outParkTrial: refused internal; keep leased past the hold's next
	// trial (corefull.go), so that the trial is another op.
	outParkTrial
	// outGiveBack: refused for the core's trouble (store-full, busy,
	// shutting-down), the hold noted: the loop gives it back, so that no
	// dispatch leases it before the hold is on (corefull.go).
	outGiveBack
)

type slot uint8

const (
	slotUrgent slot = iota
	slotSmall
	slotBulk
)

type workerDone struct {
	op      outbox.Op
	key     string // set for state ops
	slot    slot
	out     outcome
	summary bool // the worker sent the op's summary
	// shared is set on every op of a pack but its last: the stream's one
	// slot is freed once, with the last op's.
	shared bool
	// packed is what this lease of the op holds of the pack budget
	// (packbudget.go).
	packed int64
	// answered is set on a report of its own, sent once the core has
	// answered a pack, before its ops are settled: packed is then what
	// the whole pack held of the budget.
	answered bool
}

// session sends ops on one connection until it closes or ctx ends. It
// holds what its workers use of the endpoint and the agent.
type session struct {
	e        *endpoint // its sync parameters, link state and wake-ups
	name     string    // the endpoint's
	ob       *outbox.Outbox
	bases    *baseCache
	stats    *endpointStats
	tried    *triedOps
	log      hclog.Logger
	openedAt time.Time // when this process opened the outbox
	conn     *quic.Conn
	lane     *laneLink // nil: op data goes on streams only
	ctx      context.Context
	// packing says the core granted wire.CapOpsPerStream: small ops leased
	// together share a stream (sendop_pack.go); pack is the one being
	// gathered.
	packing bool
	pack    *opPack
	// packBackfill says the core granted wire.CapPackedBackfill too: ops
	// whose summary went first may join packs (docs/backfill.md).
	packBackfill bool
	// packSummaries says the core granted wire.CapSummariesPerStream:
	// summaries leased together share a stream (backfill_summaries.go).
	packSummaries bool

	wg       sync.WaitGroup
	done     chan workerDone
	inflight [3]int
	bf       backfill // summary sent: full data waits its turn (backfill.go)
	// budgetHeld are ops past their priority's share of the data budget
	// (budget.go): held until the batch ends.
	budgetHeld []edgesync.OpID
	parked     *parkedOps // refused: held for a backoff
	fullWake   fullWake   // the end of a full core's hold (corefull.go)
	// letGo is when the hold last let ops go (fullHeld): the ops started
	// next were let go then, which tells their refusal whether it
	// answers the hold's trial.
	letGo time.Time
	// One version of a key at a time: a newer version waits (leased)
	// until the one in flight is settled, so that versions reach the core
	// in order and the next one can be a delta against the last.
	keys     map[string]bool
	deferred map[string][]edgesync.OpID
	pool     sync.Pool // *opSender
	// packBytes are the plain bytes of packed ordinary ops in flight
	// (packbudget.go).
	packBytes int64
	// packAnswerMin is the least time, in ns, a stream of several ops or
	// summaries took from its write to its first answer on this
	// connection (packDelivered); 0 before any.
	packAnswerMin atomic.Int64
	// order holds an op back until the more urgent ones started before
	// it are written (writeorder.go).
	order *writeOrder
}

func (e *endpoint) session(ctx context.Context, conn *quic.Conn, ln *laneLink, packing, packBackfill, packSummaries bool) error {
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(conn.Context(), func() { cancel(errConnLost) })
	defer stop()
	s := &session{e: e, name: e.name, ob: e.a.ob, bases: e.a.bases, stats: &e.stats, tried: &e.tried,
		log: e.log, openedAt: e.a.openedAt, conn: conn, lane: ln, ctx: sctx, packing: packing, packBackfill: packBackfill, packSummaries: packSummaries, done: make(chan workerDone, 64),
		keys: map[string]bool{}, deferred: map[string][]edgesync.OpID{}, order: newWriteOrder()}
	s.pool.New = func() any { return newOpSender() }
	s.parked = newParkedOps(s.release, func() { e.wakeUp(edgesync.Critical); e.wakeUp(edgesync.Background) })
	defer s.finish()
	return s.loop()
}

// finish waits for the workers and gives every op still leased back to the
// outbox, so that the next session sends it again.
func (s *session) finish() {
	go func() { s.wg.Wait(); close(s.done) }()
	for d := range s.done {
		s.account(d)
	}
	s.release(s.bf.ids()...)
	s.release(s.budgetHeld...)
	s.parked.close()
	s.fullWake.stop()
	for _, ids := range s.deferred {
		s.release(ids...)
	}
}

// release gives leased ops back to the outbox (releaseOps).
func (s *session) release(ids ...edgesync.OpID) { releaseOps(s.log, s.ob, ids...) }

// releaseOps gives leased ops back to ob for a later attempt. It fails
// only once the outbox is closed (the agent is stopping), and then
// nothing is lost: leases live in memory, and the next Open offers every
// op again.
func releaseOps(log hclog.Logger, ob *outbox.Outbox, ids ...edgesync.OpID) {
	if len(ids) == 0 {
		return
	}
	if err := ob.Release(ids...); err != nil {
		level := hclog.Warn
		if errors.Is(err, outbox.ErrClosed) {
			level = hclog.Debug
		}
		log.Log(level, "ops not released in the outbox", "ops", opIDs(ids), "error", err)
	}
}

// opIDs renders ids for a log line.
func opIDs(ids []edgesync.OpID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}

func (s *session) account(d workerDone) {
	if d.answered {
		s.packBytes -= d.packed
		return
	}
	if !d.shared {
		s.inflight[d.slot]--
	}
	s.packBytes -= d.packed
	s.bf.settled(d.op, d.slot, d.summary)
	if d.key != "" {
		delete(s.keys, d.key)
		if ids := s.deferred[d.key]; len(ids) > 0 {
			delete(s.deferred, d.key)
			s.release(ids...)
		}
	}
	switch d.out {
	case outHold:
		s.bf.push(d.op)
	case outPark:
		s.parked.park(d.op.ID)
	case outParkTrial:
		s.parked.parkFor(d.op.ID, 2*s.e.full.backoffNow())
	case outGiveBack:
		s.release(d.op.ID)
	}
}

func (s *session) loop() error {
	e := s.e
	batchOpen := true // send what waits as soon as a connection is up
	sent := false     // the open batch started ordinary ops
	var nextBatch time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	down := time.NewTicker(linkDownPoll)
	defer down.Stop()
	for {
		p, _, changed := e.params()
		p = e.economize(p)
		if e.linkDown() {
			// Store and forward: while the core answers no probe, nothing new
			// goes out (it would only sit in QUIC's retransmission backoff and
			// come out after ops enqueued later, out of priority order). The
			// first answer reopens the window.
			select {
			case <-s.ctx.Done():
				return context.Cause(s.ctx)
			case d := <-s.done:
				s.account(d)
			case <-down.C:
			}
			continue
		}
		urgentWaiting, err := s.dispatchUrgent(p)
		if err != nil {
			return err
		}
		urgentWaiting = urgentWaiting || s.order.pendingBefore(edgesync.High) // writeorder.go
		if !batchOpen && !time.Now().Before(nextBatch) {
			batchOpen = true
		}
		if batchOpen && !urgentWaiting {
			before := s.inflight[slotSmall] + s.inflight[slotBulk]
			more, err := s.dispatchOrdinary(p)
			if err != nil {
				return err
			}
			sent = sent || s.inflight[slotSmall]+s.inflight[slotBulk] > before
			if !more {
				s.heldBack() // nothing more to send: the packs in flight are the tail
			}
			if !more && s.inflight[slotSmall]+s.inflight[slotBulk] == 0 {
				// The batch is drained (backfill too): ordinary data waits
				// for the next interval, unless the batcher lets it go
				// sooner (wake); what the budget held goes back.
				batchOpen = false
				s.release(s.budgetHeld...)
				s.budgetHeld = s.budgetHeld[:0]
				e.batch.drained(time.Now(), sent)
				sent = false
				e.appLimited()
				wait := p.Interval
				if wait <= 0 {
					wait = time.Second // best effort: poll lightly, enqueues wake us sooner
				}
				nextBatch = time.Now().Add(wait)
			}
		}
		e.nextBatch.set(batchOpen, nextBatch)
		timer.Reset(time.Until(nextBatch))
		if batchOpen {
			timer.Stop()
		}
		select {
		case <-s.ctx.Done():
			return context.Cause(s.ctx)
		case <-e.urgent:
		case <-e.wake:
			if batchOpen || e.batch.goNow(time.Now(), p.Interval, p.ChunkSize, s.weigher(p)) {
				batchOpen = true
			} else if due := e.batch.due(p.Interval); due.Before(nextBatch) {
				nextBatch = due // held small ops go at the interval after the last batch
			}
		case <-e.budgetChanged():
			batchOpen = true
		case d := <-s.done:
			s.account(d)
		case <-s.order.wake:
		case <-changed:
			// New parameters: a shorter interval may open the batch now.
			np, _, _ := e.params()
			if np.Interval < p.Interval {
				nextBatch = time.Now()
			}
		case <-timer.C:
		}
	}
}

// dispatchUrgent starts every waiting critical and schema op.
func (s *session) dispatchUrgent(p linkmon.SyncParameters) (waiting bool, err error) {
	defer s.flushPack(p) // what was leased together goes now
	for {
		if s.fullHeld() {
			return true, nil // the core's store is full (corefull.go)
		}
		ops, err := s.leaseWithin(edgesync.Critical, edgesync.Schema)
		if err != nil || len(ops) == 0 {
			return false, leaseErr(err)
		}
		if s.deferIfBusy(ops[0]) {
			continue
		}
		if _, hold := s.budgetGate(ops[0], false); hold {
			s.budgetHeld = append(s.budgetHeld, ops[0].ID) // the budget's reserve is spent
			continue
		}
		if s.joinPack(ops[0], p, slotUrgent, false) {
			continue
		}
		if s.order.pendingBefore(ops[0].Priority) {
			// A schema op waits until the critical ones started before it
			// are written (writeorder.go).
			s.release(ops[0].ID)
			return true, nil
		}
		if s.inflight[slotUrgent] >= maxUrgentInFlight {
			// More urgent ops wait for a slot: ordinary data must not
			// jump ahead of them meanwhile.
			s.release(ops[0].ID)
			return true, nil
		}
		if s.packable(ops[0], p, false) {
			s.openPack(ops[0], slotUrgent, false)
			continue
		}
		s.start(ops[0], p, slotUrgent, false)
	}
}

// deferIfBusy keeps a state op leased but unsent while another version of
// its key is in flight.
func (s *session) deferIfBusy(op outbox.Op) bool {
	if op.Kind != edgesync.StateOp || !s.keys[op.Key] {
		return false
	}
	s.deferred[op.Key] = append(s.deferred[op.Key], op.ID)
	return true
}

// dispatchOrdinary starts ordinary ops in priority order while slots are
// free; more is false when the outbox had nothing more to lease.
func (s *session) dispatchOrdinary(p linkmon.SyncParameters) (more bool, err error) {
	s.bf.preempt.Store(edgesync.NumPriorities)
	defer s.flushPack(p) // what was leased together goes now
	budget := s.packBudget()
	for {
		if s.fullHeld() {
			return true, nil // the core's store is full (corefull.go)
		}
		if s.inflight[slotSmall] >= maxSmallInFlight && s.inflight[slotBulk] >= p.Concurrency {
			return true, nil
		}
		ops, err := s.leaseWithin(ordinary...)
		if err != nil || len(ops) == 0 {
			if err := leaseErr(err); err != nil {
				return false, err
			}
			// Everything that waits is leased: full data of summarized
			// ops follows.
			s.dispatchBackfill(p, last, budget)
			return len(s.bf.queue) > 0, nil
		}
		op := ops[0]
		budgetSummary, hold := s.budgetGate(op, p.SummaryFirst(op.Priority))
		if hold {
			s.budgetHeld = append(s.budgetHeld, op.ID) // past its share of the budget
			continue
		}
		if isBackfill(op, p) {
			s.bf.push(op) // its full data follows the summaries that wait
			continue
		}
		summary := budgetSummary && !op.SummarySent
		if !summary {
			// Full data goes in rank order, backfill included.
			if s.dispatchBackfill(p, rankOf(op), budget); s.bf.ahead(rankOf(op)) {
				s.release(op.ID)
				return true, nil
			}
		}
		if s.deferIfBusy(op) {
			continue
		}
		if !summary && s.pack != nil && !s.packFits(op, budget, false) {
			s.flushPack(p) // the budget is spent: the pack goes as it is
		}
		if s.joinPack(op, p, slotSmall, summary) {
			if !summary {
				s.packed(op) // summaries are not counted (backfill_summaries.go)
			}
			continue
		}
		if s.order.pendingBefore(urgencyOf(op.Priority, summary)) {
			// A more urgent stream started before it is not written yet
			// (writeorder.go).
			s.release(op.ID)
			return true, nil
		}
		sl := slotSmall
		if !summary && op.Size > int64(p.ChunkSize) {
			sl = slotBulk
		}
		if (sl == slotSmall && s.inflight[sl] >= maxSmallInFlight) || (sl == slotBulk && s.inflight[sl] >= p.Concurrency) {
			// Strict priority: nothing of lower priority jumps ahead.
			if sl == slotBulk {
				s.bf.wantBulk(op.Priority)
			} else {
				s.heldBack() // the small slots are full
			}
			s.release(op.ID)
			return true, nil
		}
		if summary && s.packSummaries {
			s.openPack(op, sl, true) // backfill_summaries.go
			continue
		}
		if sl == slotSmall && s.packable(op, p, summary) {
			if !s.packFits(op, budget, true) {
				// The packed bytes in flight are at their budget: the op
				// waits for a pack's answers, as for a slot.
				s.release(op.ID)
				s.heldBack()
				return true, nil
			}
			s.openPack(op, sl, false)
			s.packed(op)
			continue
		}
		s.start(op, p, sl, summary)
	}
}

// heldBack tells the link monitor that the session holds small ops back
// for something other than the link: the pack budget, the small slots,
// or nothing more to send. The packs and summary streams in flight then
// deliver what the session lets go, not what the link carries, and their
// delivery rate (answerDelivered) is a lower bound; taken as the link's,
// it lowered the bandwidth the pack budget follows, the budget with it,
// and the rate again (docs/linkmon.md, "Under the agent's own load"). Not
// while an op of more than one chunk is in flight: on the data lane it
// carries what the small ops leave of the link, and the lane tells the
// monitor itself when it is held back.
func (s *session) heldBack() {
	if s.inflight[slotBulk] == 0 {
		s.e.appLimited()
	}
}

// leaseErr is what a failed Lease means to the session: a closed outbox
// ends it; the other errors name bad arguments (a negative count, an
// unknown priority), which the session never passes.
func leaseErr(err error) error {
	if errors.Is(err, outbox.ErrClosed) {
		return err
	}
	return nil
}

func (s *session) start(op outbox.Op, p linkmon.SyncParameters, sl slot, summary bool) {
	s.inflight[sl]++
	s.begin(op, sl, summary)
	sent := s.letGo
	s.spawn([]outbox.Op{op}, sl, summary, false, func(wrote, _ func()) []outcome { return []outcome{s.work(op, p, sl, summary, sent, wrote)} })
}

// begin records op going out in slot sl: the link is busy, backfill
// counts it, and its key has a version in flight.
func (s *session) begin(op outbox.Op, sl slot, summary bool) {
	s.e.mon.Busy()
	s.bf.started(op, sl, summary)
	if op.Kind == edgesync.StateOp {
		s.keys[op.Key] = true
	}
}

// spawn runs send, which sends ops on one stream of slot sl, in a worker
// and reports each op's outcome to the session in order; counted says the
// ops' bytes are counted against the pack budget (packbudget.go), which
// their answers give back: send calls answered once the core's answers
// have come (or the stream has failed), before it settles the ops with
// the outbox, or else each op's report gives back its own. send calls
// wrote once the ops' data is written (writeorder.go); a worker that
// ends before that counts as written when it ends.
func (s *session) spawn(ops []outbox.Op, sl slot, summary, counted bool, send func(wrote, answered func()) []outcome) {
	wrote := s.order.begin(urgencyOf(ops[0].Priority, summary))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		held := counted // the ops' bytes count against the pack budget
		answered := func() {
			if held {
				held = false
				s.done <- packAnswered(ops)
			}
		}
		outs := send(wrote, answered)
		wrote()
		for i, op := range ops {
			var key string
			if op.Kind == edgesync.StateOp {
				key = op.Key
			}
			d := workerDone{op: op, key: key, slot: sl, out: outs[i], summary: summary, shared: i < len(ops)-1}
			if held {
				d.packed = op.Size
			}
			s.done <- d
		}
	}()
}

// work sends one op, let go at sent (session.letGo), and settles it with
// the outbox.
func (s *session) work(op outbox.Op, p linkmon.SyncParameters, sl slot, summary bool, sent time.Time, wrote func()) outcome {
	snd := s.pool.Get().(*opSender)
	defer s.pool.Put(snd)
	pre := s.lane.takePresend(op.ID)
	defer pre.abandon() // unless the attempt adopted it
	pl, err := s.ob.OpenPayload(op.ID)
	if err != nil {
		s.log.Debug("op payload not opened; the op is released", "op", op.ID.String(), "error", err)
		s.release(op.ID)
		return outDone
	}
	if summary {
		return s.summarize(snd, op, pl, sent, wrote)
	}
	paused := s.pauseCheck(p, sl)
	if isBackfill(op, p) {
		if sl == slotBulk {
			paused = s.bf.pausable(op.Priority, paused)
		}
		p = s.backfillParams(p)
	}
	prog := s.e.transfers.begin(op)
	defer s.e.transfers.end(op.ID)
	a := &attempt{op: &op, pl: pl, params: p, paused: s.budgetPause(op.Priority, paused), eager: s.eager(op), prog: prog, room: s.e.budgetRoom(op.Priority), pre: pre, wrote: wrote}
	if b := s.deltaBase(op, p); b != nil {
		defer b.Close()
		a.base = b
	}
	res, err := snd.send(s.ctx, s.conn, s.lane, a)
	return s.settle(snd, op, pl, res, err, sent)
}

// settle records an op's transfer and settles the op, let go at sent,
// with the outbox by its result: stored, refused (refused; so is an
// ERROR that ended its stream, of a kind it would meet again: errorNack),
// or released for a retry.
func (s *session) settle(snd *opSender, op outbox.Op, pl io.ReaderAt, res sendResult, err error, sent time.Time) outcome {
	s.stats.recordTransfer(res.mode, res.plainBytes, res.wireBytes)
	s.e.attribute(op.Priority, res.wireBytes)
	// Acknowledged bytes reach the link monitor from the lane, packet by
	// packet (laneDelivery); an op's acknowledgement is one lump at commit
	// and would read a small op as a slow link and a large one as a burst.
	if res.acked && res.lane {
		s.stats.laneOps.Add(1)
		s.stats.laneBytes.Add(res.wireBytes)
	}
	if n := errorNack(op.ID, err); n != nil {
		res.nack, err = n, nil
	}
	switch {
	case errors.Is(err, errPaused):
		s.stats.paused.Add(1)
	case errors.Is(err, errBaseUnreadable):
		return s.baseUnreadable(op, err)
	case brokenAnswer(err):
		return s.parkBroken(op, err) // corefull_refusals.go
	case ownFailure(err):
		return s.parkOwn(op, err)
	case err != nil:
		s.stats.retries.Add(1)
	case res.nack != nil:
		return s.refused(op, res.nack, sent, res.mode.IsDelta())
	case res.acked:
		s.stored(snd, op, pl, res.hash)
		return outDone
	}
	s.release(op.ID)
	return outDone
}

// baseUnreadable settles an op whose delta base could not be read on this
// disk (errBaseUnreadable, in err): the base is dropped and the op goes
// again at once, in full.
func (s *session) baseUnreadable(op outbox.Op, err error) outcome {
	s.bases.drop(s.name, op.Key)
	s.stats.retries.Add(1)
	s.log.Warn("the op's delta base is unreadable on this disk; it is dropped and the op goes again in full",
		"op", op.ID.String(), "key", op.Key, "error", err)
	s.release(op.ID)
	return outDone
}

// ownFailure reports whether err is a failure of this agent's own side of
// an op's transfer (ownError) that the op's next attempt meets again: a
// frame that does not encode, a payload that does not read or encode.
// The outbox's own conditions are not: an op gone (acknowledged or
// dropped meanwhile) or quarantined, and an outbox closing, settle
// themselves; an unreadable delta base is dropped (baseUnreadable).
func ownFailure(err error) bool {
	if _, ok := errors.AsType[*ownError](err); !ok {
		return false
	}
	return !isAny(err, errBaseUnreadable, outbox.ErrNotFound, outbox.ErrDamaged, outbox.ErrClosed)
}

// parkOwn parks an op whose attempt failed on this agent's own side
// (ownFailure): sent again at once, it fails again at once, in a loop
// (TestOwnFailureIsNoHotLoop). Nothing of it is the core's.
func (s *session) parkOwn(op outbox.Op, err error) outcome {
	s.stats.parked.Add(1)
	s.log.Error("this agent could not send an op (its frames, payload or encoding failed on this side, not the core's); the op stays in the outbox and goes again after a backoff (10 s, doubling to 10 min)",
		"op", op.ID.String(), "key", op.Key, "size", op.Size, "error", err,
		"action", "report this error with the agent's version and sync profile; other ops keep going")
	return outPark
}

// summarize sends only the op's summary; a stored summary holds the op
// (leased) until the batch ends.
func (s *session) summarize(snd *opSender, op outbox.Op, pl io.ReaderAt, sent time.Time, wrote func()) outcome {
	res, err := snd.sendSummary(s.ctx, s.conn, &op, pl, wrote)
	return s.summarized(op, res, err, sent)
}

// summarized settles op, whose summary was let go at sent, by the core's
// answer to it (res, or the error that left it without one).
func (s *session) summarized(op outbox.Op, res sendResult, err error, sent time.Time) outcome {
	if n := errorNack(op.ID, err); n != nil {
		res.nack, err = n, nil
	}
	switch {
	case err == nil && res.acked:
		s.e.full.stored(s.log) // the core had room for it
		s.stats.summaries.Add(1)
		s.stats.summaryRaw.Add(op.Size)
		if err := s.ob.MarkSummarySent(op.ID); err != nil {
			s.log.Debug("summary sent but not marked in the outbox; it will be sent again", "op", op.ID.String(), "error", err)
			s.release(op.ID)
			return outDone
		}
		return outHold
	case err == nil && res.nack != nil:
		return s.refused(op, res.nack, sent, false)
	case brokenAnswer(err):
		return s.parkBroken(op, err)
	}
	s.release(op.ID)
	return outDone
}

// pauseCheck returns what a bulk transfer under p polls at its chunk
// boundaries (nil for other slots): new sync parameters pause it, so that
// it resumes under them. On the lane the chunk size, concurrency and
// interval do not change how fast the op goes: it goes on unless the
// encoding or summary policy changed, since a pause costs the lane its
// pipeline and two round trips.
func (s *session) pauseCheck(p linkmon.SyncParameters, sl slot) func() bool {
	if sl != slotBulk {
		return nil
	}
	_, gen, _ := s.e.params()
	return func() bool {
		np, g, _ := s.e.params()
		if g == gen {
			return false
		}
		return s.lane == nil || !sameEncoding(np, p)
	}
}

// eager reports whether the core cannot hold any of op, so that its lane
// data need not wait to hear where to resume: this process has not tried
// it before, and it was enqueued since the outbox opened. It records the
// attempt.
func (s *session) eager(op outbox.Op) bool {
	return s.tried.first(op.ID) && op.EnqueuedAt.After(s.openedAt)
}

// deltaBase returns the version of op's key last stored at the core, when
// p sends deltas and op is a state op; nil otherwise. The caller closes it.
func (s *session) deltaBase(op outbox.Op, p linkmon.SyncParameters) *base {
	if op.Kind != edgesync.StateOp || p.Mode == edgesync.SyncFull || p.Mode == edgesync.SyncFullZstd {
		return nil
	}
	b, err := s.bases.get(s.name, op.Key)
	if err != nil {
		return nil // none kept: the op goes in full
	}
	return b
}

// stored settles an op the core has stored: its version becomes the key's
// next delta base, then the outbox forgets the op.
func (s *session) stored(snd *opSender, op outbox.Op, pl io.ReaderAt, hash codec.Hash) {
	if op.Kind == edgesync.StateOp {
		if err := s.bases.put(s.name, op.Key, hash, io.NewSectionReader(pl, 0, op.Size), op.Size); err != nil {
			s.log.Debug("delta base not kept", "key", op.Key, "error", err)
		}
	}
	if err := s.ob.Ack(op.ID); err != nil {
		s.log.Warn("ack in outbox failed; the op will be sent again and the core will de-duplicate it", "op", op.ID.String(), "error", err)
		return
	}
	snd.forget(op.ID)
	s.e.full.stored(s.log)
	s.tried.forget(op.ID)
	s.parked.forget(op.ID)
	s.stats.recordAck(op.Priority, op.Size, time.Since(op.EnqueuedAt))
	if op.SummarySent {
		s.stats.backfilled.Add(1)
		s.stats.backfilledRaw.Add(op.Size)
	}
}

// sameEncoding reports whether ops are encoded and held back alike under
// a and b.
func sameEncoding(a, b linkmon.SyncParameters) bool {
	return a.Mode == b.Mode && a.Compression == b.Compression && a.Level == b.Level &&
		a.SummaryOnly == b.SummaryOnly && a.Summaries == b.Summaries
}

// refused settles an op let go at sent that the core refused (as a
// delta if delta): what can succeed is sent again (in full where the
// delta was the problem), what cannot is kept in the outbox but parked
// for a backoff (parked.go), so nothing is lost.
func (s *session) refused(op outbox.Op, n *wire.Nack, sent time.Time, delta bool) outcome {
	s.stats.recordNack(n.Code)
	if !coreTrouble(n.Code) {
		s.e.full.answered(sent, n.Code, s.log) // a trial refused so ends the hold (corefull.go)
	}
	switch n.Code {
	case wire.CodeBaseMismatch, wire.CodeCorrupt, wire.CodeHashMismatch:
		return s.refusedBytes(op, n, delta) // corefull_refusals.go
	case wire.CodeExpired:
		return s.refusedExpired(op, n)
	case wire.CodeStoreFull, wire.CodeBusy, wire.CodeShuttingDown:
		return s.refusedFull(n, sent) // the core's trouble: every op holds (corefull.go)
	case wire.CodeInternal:
		// The core's trouble too, or this op's alone (a record of its key
		// the core cannot write): every op holds, and this one is parked
		// for twice the hold, so that the hold's next trial is another op
		// and the rest of the outbox flows past it if the core stores
		// that; it comes back by the trial after, and no later than that
		// once the core stores again (at most 2 × maxTroubleBackoff).
		s.stats.retries.Add(1)
		s.e.full.refused(sent, time.Now(), n.Code, n.Msg, s.log)
		return outParkTrial
	}
	return s.parkRefused(op, n)
}
