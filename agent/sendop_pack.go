package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// This file sends several small ops on one op stream when the core grants
// wire.CapOpsPerStream (docs/wire.md, "Several ops per stream";
// docs/design.md, "Packing small ops"). The dispatchers gather the ops
// they lease one after another into a pack while each can go whole and
// shares the pack's priority and slot; anything else ends the pack, which
// starts at once. Nothing waits to fill a pack: it holds only what was
// ready when the dispatcher ran.

// maxPackBytes bounds the plain bytes of one pack, and with them the one
// write's buffer and how long a pack keeps its stream: 32 small slots of
// full packs hold 32 MiB.
const maxPackBytes = 1 << 20

// errUnpackable marks an op whose encoded data came out larger than
// wire.MaxPackedOpData: it goes on a stream of its own.
var errUnpackable = errors.New("encoded data larger than a packed op may carry")

// opPack is the ops gathered for one stream, in the order they were
// leased.
type opPack struct {
	ops   []outbox.Op
	slot  slot
	bytes int64
	sent  time.Time // when its first op was let go (session.letGo)
	// summary says the ops go as their summaries (backfill_summaries.go);
	// bytes is then their summaries' bytes.
	summary bool
}

// packedOpSlack is what an op's one chunk may add to its plain bytes
// when encoded (the chunk's mode byte and body length; a chunk that does
// not shrink goes as it is): an op within wire.MaxPackedOpData less this
// always encodes within the limit, and is never left out of its pack to
// go alone after the pack's answers.
const packedOpSlack = 16

// packable reports whether op may go in a pack under p: the core granted
// the capability, and the op goes whole as an op of one chunk does (not
// as its summary, its encoding within wire.MaxPackedOpData bytes), and
// not after its summary unless the core granted wire.CapPackedBackfill
// too (backfill, docs/backfill.md).
func (s *session) packable(op outbox.Op, p linkmon.SyncParameters, summary bool) bool {
	return s.packing && !summary && (!op.SummarySent || s.packBackfill) && op.Size <= wire.MaxPackedOpData-packedOpSlack &&
		op.Size <= int64(chunkSizeOf(p))
}

// joinPack adds op, sent in full or as its summary, to the open pack if
// it fits: same slot, priority and kind (full or summary), room left.
// Otherwise it starts the open pack, so that nothing leased after its ops
// goes ahead of them, and returns false.
func (s *session) joinPack(op outbox.Op, p linkmon.SyncParameters, sl slot, summary bool) bool {
	pk := s.pack
	if pk == nil {
		return false
	}
	w := packWeight(op, summary)
	fits := s.packable(op, p, summary)
	if summary {
		fits = s.packSummaries
	}
	if fits && pk.slot == sl && pk.summary == summary && pk.ops[0].Priority == op.Priority && len(pk.ops) < wire.MaxOpsPerStream &&
		pk.bytes+w <= maxPackBytes {
		s.begin(op, sl, summary)
		pk.ops = append(pk.ops, op)
		pk.bytes += w
		return true
	}
	s.flushPack(p)
	return false
}

// openPack starts gathering a pack with op, sent in full or as its
// summary, which takes a slot of sl.
func (s *session) openPack(op outbox.Op, sl slot, summary bool) {
	s.inflight[sl]++
	s.begin(op, sl, summary)
	s.pack = &opPack{ops: []outbox.Op{op}, slot: sl, bytes: packWeight(op, summary), sent: s.letGo, summary: summary}
}

// packWeight is what op weighs in a pack: its plain bytes, or its
// summary's.
func packWeight(op outbox.Op, summary bool) int64 {
	if summary {
		return int64(len(op.Summary))
	}
	return op.Size
}

// flushPack starts the open pack, if any: one op goes as it would
// without packing, several on one stream.
func (s *session) flushPack(p linkmon.SyncParameters) {
	pk := s.pack
	if pk == nil {
		return
	}
	s.pack = nil
	if pk.summary {
		s.flushSummaries(pk, p) // backfill_summaries.go
		return
	}
	counted := pk.slot == slotSmall // ordinary ops: the pack budget counts them (packbudget.go)
	if len(pk.ops) == 1 {
		op := pk.ops[0]
		s.spawn(pk.ops, pk.slot, false, counted, func(wrote, _ func()) []outcome { return []outcome{s.work(op, p, pk.slot, false, pk.sent, wrote)} })
		return
	}
	s.spawn(pk.ops, pk.slot, false, counted, func(wrote, answered func()) []outcome { return s.workPack(pk.ops, p, pk.sent, wrote, answered) })
}

// workPack sends a pack's ops, let go at sent, on one stream and settles
// each with the outbox as work settles one: the core's answers come per
// op, and the ops it did not answer before the stream broke go back to
// the outbox. An ERROR that ended the stream (errorNack), or an answer
// that broke the protocol (brokenAnswer), is one refusal, of the first op
// it left unanswered. It calls answered once the stream is done with,
// before settling.
func (s *session) workPack(ops []outbox.Op, p linkmon.SyncParameters, sent time.Time, wrote, answered func()) []outcome {
	snd := s.pool.Get().(*opSender)
	defer s.pool.Put(snd)
	outs := make([]outcome, len(ops)) // outDone for every op not sent
	as := make([]*attempt, 0, len(ops))
	idx := make([]int, 0, len(ops)) // the op of each attempt
	for i := range ops {
		op := &ops[i]
		s.lane.takePresend(op.ID).abandon() // a one-chunk op never uses one
		pl, err := s.ob.OpenPayload(op.ID)
		if err != nil {
			s.log.Debug("op payload not opened; the op is released", "op", op.ID.String(), "error", err)
			s.release(op.ID)
			continue
		}
		prog := s.e.transfers.begin(*op)
		defer s.e.transfers.end(op.ID)
		params := p
		if isBackfill(*op, p) {
			params = s.backfillParams(p) // as work sends it alone
		}
		a := &attempt{op: op, pl: pl, params: params, prog: prog, room: s.e.budgetRoom(op.Priority), wrote: wrote}
		if b := s.deltaBase(*op, params); b != nil {
			defer b.Close()
			a.base = b
		}
		as = append(as, a)
		idx = append(idx, i)
	}
	res, errs, carried := snd.sendPack(s.ctx, s.conn, as, s.packDelivered)
	answered() // nothing of the pack is on the link now (packbudget.go)
	if carried > 1 {
		// Only the ops the stream carried: one left out goes alone.
		s.stats.packs.Add(1)
		s.stats.packedOps.Add(int64(carried))
	}
	var ended error // the core's ERROR that ended the stream, once settled as a refusal
	for k, a := range as {
		r, err := res[k], errs[k]
		switch {
		case errors.Is(err, errUnpackable):
			r, err = snd.send(s.ctx, s.conn, nil, a)
		case err != nil && err == ended:
			err = fmt.Errorf("not answered before the core's %v ended the stream", err) // only goes again
		case errorNack(a.op.ID, err) != nil, brokenAnswer(err):
			ended = err
		}
		outs[idx[k]] = s.settle(snd, *a.op, a.pl, r, err, sent)
	}
	return outs
}

// sendPack sends the attempts' ops whole on one stream, in one write,
// closes its send side and reads the core's answer to each, in order.
// res[i] is attempt i's result; errs[i] is set for an op the core did not
// answer (the stream broke or the core ended it with ERROR: the op is in
// doubt and goes again), or errUnpackable for one left out because its
// encoded data is too large for a pack. carried is how many ops the
// stream carried: written whole on it. delivered, if not nil, is told
// the stream's bytes and its time from write to answer when the core's
// answers arrive (answerDelivered).
func (s *opSender) sendPack(ctx context.Context, conn *quic.Conn, as []*attempt, delivered func(int, time.Duration)) (res []sendResult, errs []error, carried int) {
	res = make([]sendResult, len(as))
	errs = make([]error, len(as))
	ts := make([]*opTransfer, len(as))
	in := make([]int, 0, len(as)) // the attempts on the stream
	b := s.frame[:0]
	for i, a := range as {
		t, err := s.encoding(a, &res[i])
		if err != nil {
			errs[i] = err
			continue
		}
		n := len(b)
		b, err = s.appendWhole(b, t, t.header())
		if err == nil && res[i].wireBytes > wire.MaxPackedOpData {
			err = errUnpackable
		}
		if err != nil {
			b, res[i], errs[i] = b[:n], sendResult{}, err
			continue
		}
		ts[i] = t
		in = append(in, i)
	}
	s.frame = b
	if len(in) == 0 {
		return res, errs, carried
	}
	fail := func(from int, err error) {
		for _, i := range in[from:] {
			errs[i] = err
		}
	}
	str, done, err := openOpStream(ctx, conn, as[in[0]].op.Priority)
	if err != nil {
		fail(0, err)
		return res, errs, carried
	}
	defer done()
	wroteAt := time.Now()
	if _, err := str.Write(b); err != nil {
		fail(0, fmt.Errorf("write %d packed ops: %w", len(in), err))
		return res, errs, carried
	}
	carried = len(in)
	for _, i := range in {
		ts[i].wholeSent()
		ts[i].written()
	}
	if err := str.Close(); err != nil {
		fail(0, err)
		return res, errs, carried
	}
	for k, i := range in {
		f, err := wire.ReadFrame(str, wire.MaxFrameSize)
		if k == 0 && err == nil {
			answerDelivered(delivered, len(b), wroteAt)
		}
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: the core ended the stream with %d of %d packed ops unanswered", io.ErrUnexpectedEOF, len(in)-k, len(in))
		}
		if err == nil {
			err = packAnswer(f, as[i].op.ID, &res[i])
		}
		if err != nil {
			fail(k, err)
			break
		}
	}
	return res, errs, carried
}

// sendSummaries writes sums on one stream of urgency prio in one write,
// closes its send side and reads the core's answer to each, in order.
// errs[i] is set for a summary the core did not answer (the stream broke
// or the core ended it with ERROR): it goes again. delivered, if not nil,
// is told the stream's bytes and its time from write to answer when the
// core's answers arrive (answerDelivered).
func sendSummaries(ctx context.Context, conn *quic.Conn, prio edgesync.Priority, sums []*wire.Summary, wrote func(), delivered func(int, time.Duration)) (res []sendResult, errs []error) {
	res = make([]sendResult, len(sums))
	errs = make([]error, len(sums))
	fail := func(from int, err error) {
		for i := from; i < len(sums); i++ {
			errs[i] = err
		}
	}
	var b []byte
	for _, sum := range sums {
		var err error
		if b, err = sum.Append(b); err != nil {
			fail(0, err)
			return res, errs
		}
	}
	str, done, err := openOpStream(ctx, conn, prio)
	if err != nil {
		fail(0, err)
		return res, errs
	}
	defer done()
	wroteAt := time.Now()
	if _, err := str.Write(b); err != nil {
		fail(0, fmt.Errorf("write %d summaries: %w", len(sums), err))
		return res, errs
	}
	wrote()
	if err := str.Close(); err != nil {
		fail(0, err)
		return res, errs
	}
	for k, sum := range sums {
		f, err := wire.ReadFrame(str, wire.MaxFrameSize)
		if k == 0 && err == nil {
			answerDelivered(delivered, len(b), wroteAt)
		}
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: the core ended the stream with %d of %d summaries unanswered", io.ErrUnexpectedEOF, len(sums)-k, len(sums))
		}
		if err == nil {
			err = packAnswer(f, sum.ID, &res[k])
		}
		if err != nil {
			fail(k, err)
			break
		}
	}
	return res, errs
}

// answerDelivered tells delivered (if not nil) the n bytes of a stream of
// several ops or summaries, written at wroteAt, and the time since, once
// the core's first answer has arrived (session.packDelivered). The
// core reads such a stream to its end, stores its ops together and
// answers them in one write (docs/wire.md, "Several ops per stream"), so
// the first answer is when the whole stream was delivered: the link
// monitor's delivery rate over these answers is what the packs carry,
// as the data lane's acknowledgements are what it carries
// (docs/linkmon.md, "Under the agent's own load").
func answerDelivered(delivered func(int, time.Duration), n int, wroteAt time.Time) {
	if delivered != nil {
		delivered(n, time.Since(wroteAt))
	}
}

// packAnswer interprets the core's answer to the packed op id: an ACK
// naming it or a NACK for it settles it; ERROR, or anything else, ends
// the stream with the op in doubt.
func packAnswer(f wire.Frame, id edgesync.OpID, res *sendResult) error {
	switch f := f.(type) {
	case *wire.Ack:
		if !slices.Contains(f.IDs, id) {
			return fmt.Errorf("%w: the core acknowledged %v where op %s's answer was due", wire.ErrBadRequest, f.IDs, id)
		}
		res.acked = true
		return nil
	case *wire.Nack:
		if f.ID != id {
			return fmt.Errorf("%w: the core refused op %s where op %s's answer was due", wire.ErrBadRequest, f.ID, id)
		}
		res.nack = f
		return nil
	case *wire.Error:
		return wire.ErrorFromCode(f.Code, f.Msg)
	}
	return fmt.Errorf("%w: unexpected %s from the core for packed op %s", wire.ErrBadRequest, f.Type(), id)
}
