package agent

import (
	"fmt"
	"time"

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
	res, errs := sendSummaries(s.ctx, s.conn, min(ops[0].Priority, edgesync.High), sums, wrote, s.packDelivered)
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
