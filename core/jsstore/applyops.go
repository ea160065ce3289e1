package jsstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
)

var _ core.WholeOpsApplier = (*Store)(nil)

// ApplyWholeOps applies several whole ops of one agent (core.WholeOpsApplier;
// docs/wire.md, "Several ops per stream") with the same steps and the same
// exactly-once contract as each alone (the top of apply.go), but without
// waiting for each op's acknowledgements before the next op's writes:
// the small events' writes go out together, in the ops' order, on one
// connection, and are waited for together. On one replica that is their
// applied entries (KV Create), then their events; with batches, each
// event's marker and event batch. Each op gets its own result.
//
// Events keep their order: the small ones are published in the ops'
// order on one connection, and a large one, or any while the store's
// layout is changing (legacy markers or entries to look up), takes
// Apply's path in its turn, after the events before it. State ops (whose
// compare-and-set reads the key first) are applied one after another as
// Apply applies them. The exception: an event whose applied entry
// existed already (sent before, to this core or another, and perhaps
// visible) takes Apply's path after the events published with it.
func (s *Store) ApplyWholeOps(agent string, ops []core.WholeOp) []core.WholeResult {
	out := make([]core.WholeResult, len(ops))
	var run []int // small events to apply together
	flush := func() {
		for _, i := range s.applyEvents(agent, ops, run, out) {
			out[i].Result, out[i].Err = s.Apply(agent, ops[i].Header, bytes.NewReader(ops[i].Data))
		}
		run = run[:0]
	}
	fast := !s.layoutChanged.Load() && (s.batches && !s.legacy() || !s.batches && !s.markersLive())
	for i, op := range ops {
		hdr := op.Header
		if err := core.CheckOp(agent, hdr, s.cfg.MaxObjectSize); err != nil {
			out[i].Err = fmt.Errorf("apply: %w", err)
			continue
		}
		if int64(len(op.Data)) != hdr.Size {
			out[i].Err = fmt.Errorf("apply %s: %w: %d bytes, op declared %d", hdr.OpID, core.ErrIncomplete, len(op.Data), hdr.Size)
			continue
		}
		if fast && hdr.Kind == edgesync.EventOp && s.small(hdr.Size) {
			if sum := sha256.Sum256(op.Data); sum != hdr.Hash {
				out[i].Err = fmt.Errorf("apply %s: %w: data hashes to %x, op declared %x", hdr.OpID, core.ErrHashMismatch, sum[:8], hdr.Hash[:8])
				continue
			}
			run = append(run, i)
			continue
		}
		if hdr.Kind == edgesync.EventOp {
			flush() // the events before it go first
		}
		out[i].Result, out[i].Err = s.Apply(agent, hdr, bytes.NewReader(op.Data))
	}
	flush()
	for i := range out {
		markFull(&out[i].Err) // as Apply's: store-full reaches the agent from every write path
	}
	return out
}

// applyEvents applies the small events of ops at the indices idx, their
// writes pipelined, and returns those to apply again one by one (their
// applied entry existed).
func (s *Store) applyEvents(agent string, ops []core.WholeOp, idx []int, out []core.WholeResult) (again []int) {
	if len(idx) == 0 {
		return nil
	}
	if err := s.acquire(); err != nil {
		for _, i := range idx {
			out[i].Err = fmt.Errorf("apply: %w", err)
		}
		return nil
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	var reserved []int
	for _, i := range idx {
		if err := s.reserveFor(ctx, agent, ops[i].Header, true); err != nil {
			out[i].Err = fmt.Errorf("apply %s: %w", ops[i].Header.OpID, err)
			continue
		}
		reserved = append(reserved, i)
	}
	defer func() {
		for _, i := range reserved {
			s.counters.addLocal(agent, -ops[i].Header.Size)
		}
	}()
	if s.batches {
		s.eventBatches(ctx, agent, ops, reserved, out)
		return nil
	}
	return s.eventsTwoWrites(ctx, agent, ops, reserved, out)
}

// eventBatches commits events as commitEvent does, each its marker and
// itself in one atomic batch, the batches sent together.
func (s *Store) eventBatches(ctx context.Context, agent string, ops []core.WholeOp, idx []int, out []core.WholeResult) {
	ws := make([]*groupWrite, 0, len(idx))
	var todo []int
	for _, i := range idx {
		marker, ev, err := s.eventBatch(agent, ops[i].Header, ops[i].Data, "")
		if err != nil {
			out[i].Err = fmt.Errorf("apply %s: %w", ops[i].Header.OpID, err)
			continue
		}
		ws = append(ws, &groupWrite{ctx: ctx, pre: marker, msg: ev})
		todo = append(todo, i)
	}
	s.enqueueAll(s.oc(), ws)
	hook("event-batch")
	for k, i := range todo {
		out[i] = s.eventPublished(ctx, agent, ops[i].Header, ws[k].res)
	}
}

// eventsTwoWrites commits events as commit does on one replica: each
// op's applied entry created, all together; then the events of those
// created, all together, each within half the duplicate window of its
// entry's creation. An op whose entry existed is returned, to take
// commit's path, which looks for its effect.
//
// The messages are commit's and publishEvent's, made with the text the
// ops share made once (opsText) and the publish options written as the
// headers nats.go would write for them.
func (s *Store) eventsTwoWrites(ctx context.Context, agent string, ops []core.WholeOp, idx []int, out []core.WholeResult) (again []int) {
	ws := make([]*groupWrite, 0, len(idx))
	var todo []int
	ids := make([]string, len(ops)) // the ops' IDs as text
	start := time.Now()
	t := s.opsText(agent)
	at := s.cfg.Now()
	for _, i := range idx {
		hdr := ops[i].Header
		b, err := s.appliedAt(hdr, at)
		if err != nil {
			out[i].Err = fmt.Errorf("apply %s: %w", hdr.OpID, err)
			continue
		}
		ids[i] = hdr.OpID.String()
		ws = append(ws, &groupWrite{ctx: ctx,
			msg: &nats.Msg{Subject: t.applied + ids[i], Data: b,
				// jetstream.WithExpectLastSequencePerSubject(0): create-only.
				Header: nats.Header{jetstream.ExpectedLastSubjSeqHeader: {"0"}}}})
		todo = append(todo, i)
	}
	c := s.oc()
	s.enqueueAll(c, ws)
	var created []int
	for k, i := range todo {
		switch err := ws[k].res.err; {
		case err == nil:
			created = append(created, i)
		case isWrongLastSeq(err):
			// An entry, or a delete marker: commit tells them apart.
			again = append(again, i)
		default:
			out[i].Err = fmt.Errorf("apply %s: applied index: %w", ops[i].Header.OpID, err)
		}
	}
	hook("applied-created")
	deadline := start.Add(s.cfg.DuplicateWindow / 2)
	pctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	ws = ws[:0]
	text := metaText{agent: t.escaped, stored: s.cfg.Now().UTC().Format(time.RFC3339Nano)}
	for _, i := range created {
		hdr := ops[i].Header
		m := meta{agent: agent, key: hdr.Key, op: hdr.OpID, kind: hdr.Kind, priority: hdr.Priority, size: hdr.Size, hash: hdr.Hash}
		text.op = ids[i]
		msg := &nats.Msg{Subject: t.eventSubject(s, hdr.Key), Header: m.headerWith(3, text), Data: ops[i].Data}
		if s.markerGuard {
			noMarker(msg, t.marker+ids[i])
		}
		// jetstream.WithMsgID(agentKey(agent, op)).
		msg.Header[jetstream.MsgIDHeader] = []string{t.token + "." + ids[i]}
		ws = append(ws, &groupWrite{ctx: pctx, msg: msg})
	}
	if !time.Now().Before(deadline) {
		for _, i := range created {
			out[i].Err = fmt.Errorf("apply %s: %w", ops[i].Header.OpID, errConflict)
		}
		return again
	}
	s.enqueueAll(c, ws)
	for k, i := range created {
		out[i] = s.eventPublished(ctx, agent, ops[i].Header, ws[k].res)
	}
	return again
}

// opsText is the text that the writes of one agent's ops share, made
// once for the ops of a stream (ApplyWholeOps) rather than once per op.
type opsText struct {
	token   string // the agent's subject token
	escaped string // the agent's name as HdrAgent writes it
	applied string // the subject of its applied entries, up to the op ID
	marker  string // the subject of its markers, up to the op ID
	key     string // the last key asked of eventSubject
	subject string // its event subject
}

func (s *Store) opsText(agent string) *opsText {
	tok := Token(agent)
	return &opsText{token: tok, escaped: url.PathEscape(agent),
		applied: "$KV." + s.n.bucket(bucketApplied) + "." + tok + ".",
		marker:  s.n.subject(subjApplied) + "." + tok + "."}
}

// eventSubject is s.n.eventSubject(agent, key): the ops of a stream
// often share their key.
func (t *opsText) eventSubject(s *Store, key string) string {
	if t.subject == "" || key != t.key {
		t.key, t.subject = key, s.n.subject(subjEvents)+"."+t.token+"."+Token(key)
	}
	return t.subject
}

// eventPublished is the result of an event op whose publish (alone, or
// its batch) got r, as commitEvent and publishEvent make it.
func (s *Store) eventPublished(ctx context.Context, agent string, hdr core.PartialHeader, r groupResult) core.WholeResult {
	res := core.Result{OpID: hdr.OpID, Kind: hdr.Kind, Key: hdr.Key, Size: hdr.Size, Hash: hdr.Hash}
	err := r.err
	switch {
	case err == nil && r.ack.Duplicate:
		// Published by another core within the window.
		s.counters.add(agent, core.AgentStats{Dedups: 1})
		res.Seq, res.Duplicate = r.ack.Sequence, true
	case err == nil:
		res.Seq = r.ack.Sequence
		s.counters.add(agent, core.AgentStats{Events: 1, EventBytes: hdr.Size, Bytes: hdr.Size})
	case isWrongLastSeq(err):
		// The op has a marker: applied before with batches, or in
		// flight on another core (commitEvent).
		res, _, err = s.markedEvent(ctx, res, agent, hdr, "")
	case atomicDisabled(err):
		err = fmt.Errorf("event: %w: %w", err, s.errLayout())
	default:
		err = fmt.Errorf("event: %w", err)
	}
	return wholeResult(hdr, res, err)
}

// atomicDisabled reports whether err is the server's refusal of a batch
// to a stream without allow_atomic.
func atomicDisabled(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeAtomicDisabled
}

// wholeResult is an op's result, its error naming the op.
func wholeResult(hdr core.PartialHeader, res core.Result, err error) core.WholeResult {
	if err != nil {
		return core.WholeResult{Result: res, Err: fmt.Errorf("apply %s: %w", hdr.OpID, err)}
	}
	return core.WholeResult{Result: res}
}
