package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// This file sends several summaries on one op stream when the core grants
// wire.CapSummariesPerStream (docs/wire.md, "Several summaries per
// stream"; docs/backfill.md, "Order"): the summaries dispatchOrdinary
// leases one after another, of one priority, gather in a pack (opPack
// with summary set) as small ops do, up to wire.MaxOpsPerStream, and go
// in one write on a stream whose urgency is high's at most, so that they
// still overtake ordinary full data. They are not counted against the
// pack budget: a summary is its key, hash and the producer's few bytes.

// flushSummaries starts pk, a pack of summaries: one goes as it would
// without packing, several on one stream.
func (s *session) flushSummaries(pk *opPack, p linkmon.SyncParameters) {
	if len(pk.ops) == 1 {
		op := pk.ops[0]
		s.spawn(pk.ops, pk.slot, true, false, func(wrote, _ func()) []outcome { return []outcome{s.work(op, p, pk.slot, true, pk.sent, wrote)} })
		return
	}
	s.spawn(pk.ops, pk.slot, true, false, func(wrote, _ func()) []outcome { return s.workSummaries(pk.ops, pk.sent, wrote) })
}

// workSummaries sends the summaries of ops, let go at sent, on one stream
// and settles each as summarize does. An ERROR that ended the stream, or
// an answer that broke the protocol, is one refusal, of the first op it
// left unanswered; the ops after it only go again.
func (s *session) workSummaries(ops []outbox.Op, sent time.Time, wrote func()) []outcome {
	snd := s.pool.Get().(*opSender)
	defer s.pool.Put(snd)
	outs := make([]outcome, len(ops)) // outDone for every op not sent
	var sums []*wire.Summary
	var idx []int // the op of each summary
	for i := range ops {
		op := &ops[i]
		pl, err := s.ob.OpenPayload(op.ID)
		if err == nil {
			var h [32]byte
			if h, err = snd.payloadHash(op, pl); err == nil {
				sums = append(sums, &wire.Summary{ID: op.ID, Key: op.Key, Size: uint64(op.Size), Hash: h, Time: op.EnqueuedAt, Producer: op.Summary})
				idx = append(idx, i)
				continue
			}
		}
		s.log.Debug("op payload not read for its summary; the op is released", "op", op.ID.String(), "error", err)
		s.release(op.ID)
	}
	if len(sums) == 0 {
		return outs
	}
	res, errs := sendSummaries(s.ctx, s.conn, min(ops[0].Priority, edgesync.High), sums, wrote)
	if len(sums) > 1 {
		s.stats.packs.Add(1)
		s.stats.packedOps.Add(int64(len(sums)))
	}
	var ended error // the core's ERROR that ended the stream, once settled as a refusal
	for k, i := range idx {
		err := errs[k]
		switch {
		case err != nil && err == ended:
			err = fmt.Errorf("not answered before the core's %v ended the stream", err) // only goes again
		case errorNack(ops[i].ID, err) != nil, brokenAnswer(err):
			ended = err
		}
		outs[i] = s.summarized(ops[i], res[k], err, sent)
	}
	return outs
}

// sendSummaries writes sums on one stream of urgency prio in one write,
// closes its send side and reads the core's answer to each, in order.
// errs[i] is set for a summary the core did not answer (the stream broke
// or the core ended it with ERROR): it goes again.
func sendSummaries(ctx context.Context, conn *quic.Conn, prio edgesync.Priority, sums []*wire.Summary, wrote func()) (res []sendResult, errs []error) {
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
