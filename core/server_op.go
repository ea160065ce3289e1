package core

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/wire"
)

// opHandler runs the conversation of one op stream (see wire's doc):
//
//	agent: OP_HEADER                core: ACK (already applied) | NACK | RESUME_ANSWER
//	agent: DATA … COMMIT            core: ACK | NACK
//
// or a SUMMARY, answered with ACK once stored. DATA offsets are plain
// offsets at chunk boundaries; each DATA carries one independently encoded
// chunk, decoded here as it arrives so that only the plain bytes beyond what
// the store already holds are written (a resumed op may restart inside a
// chunk the core has in part, e.g. after the chunk size changed).
type opHandler struct {
	store Backend
	stats *serverStats
	// maxOpBytes bounds an op's plain size; frameTimeout bounds the wait
	// for the next frame (ServerConfig).
	maxOpBytes   int64
	frameTimeout time.Duration
	agent        string
	fig          *agentFigures // the agent's figures; nil counts nothing
	str          *quic.Stream
	log          hclog.Logger
	dec          codec.Decoder
	// mem is the connection's frame memory (server_memory.go): fr's body
	// buffer, dec's scratch and buf, the decoded chunk, are reserved in
	// it and given back by finish.
	mem *memBudget
	fr  *wire.Reader
	// in is what fr reads the stream through: the frame deadline and the
	// read-ahead buffer (server_read.go), given back by finish.
	in streamInput
	// readAheads counts the connection's streams that hold a read-ahead
	// buffer (server_read.go); nil: this stream takes none.
	readAheads *readAheadSlots
	buf        []byte
	// lane routes the connection's lane data; nil when CapLane was not
	// granted.
	lane *laneRouter
	// receiving counts the streams receiving each partial op (the
	// server's, shared by every connection).
	receiving *receivers
	// pipelined is set while the agent may still be sending the rest of
	// an op without waiting for an answer: a one-chunk op goes out whole
	// (header, DATA, COMMIT), and an eager lane op's COMMIT follows its
	// lane data. finish reads that rest rather than cancel it.
	pipelined bool
	// credits gives the connection's finished streams' credit back in
	// batches (server_credit.go); nil releases each at once.
	credits *streamCredits
	// committing is set once COMMIT is read: the agent closes its side
	// right after it (wire's doc), and finish waits for that end rather
	// than cancel, whose STOP_SENDING could otherwise beat the agent's
	// close and fail it although the op is acknowledged.
	committing bool
	// packed is set when the connection granted CapOpsPerStream: a
	// stream whose first op is whole may carry more (server_packed.go).
	packed bool
	// packedBackfill is set when it granted CapPackedBackfill too: ops
	// with OpHeader.Summarized may share such a stream.
	packedBackfill bool
	// packedSummaries is set when it granted CapSummariesPerStream: a
	// stream may carry several SUMMARY frames (server_summaries.go).
	packedSummaries bool
	// packedMem is what the ops of such a stream hold of mem until
	// finish.
	packedMem int
}

// maxPipelinedRest bounds what finish reads of a pipelined op the core
// answered early: one maximal DATA frame and a COMMIT.
const maxPipelinedRest = wire.MaxFrameSize + 4096

func (h *opHandler) run() {
	h.fr = wire.NewReader(h.in.open(h.str, h.frameTimeout, h.mem, h.readAheads), wire.MaxFrameSize, wire.WithBudget(h.mem))
	h.dec.Budget = h.mem // its scratch: a chunk's body, a delta's streams and base region
	defer h.finish()
	f, err := h.readFrame(wire.FrameOpHeader, wire.FrameSummary, wire.FrameResumeQuery)
	if err != nil {
		// A first frame that does not fit the frame memory may open ops
		// the agent writes at once: it finishes that write (finish reads
		// the rest, up to its bound) and reads the ERROR busy.
		h.pipelined = errors.Is(err, wire.ErrBusy)
		h.fail(err)
		return
	}
	switch f := f.(type) {
	case *wire.OpHeader:
		err = h.op(f)
	case *wire.Summary:
		if h.packedSummaries {
			err = h.summaries(f) // perhaps the first of several (server_summaries.go)
		} else {
			err = h.summary(f)
		}
	case *wire.ResumeQuery:
		err = h.resume(f)
	}
	if err != nil {
		h.fail(err)
	}
}

// finish ends the stream once the core has answered. quic-go frees an
// incoming stream's slot only when its receive side has been read to the
// end or cancelled, so a stream the core stops reading early must be
// cancelled, or the connection runs out of streams after MaxStreams early
// answers. The rest of a pipelined op is read first, up to its bound:
// the agent is writing it and then reads the answer, and a cancelled
// stream would fail its write instead. So is the end of a stream whose
// COMMIT was read: the agent closes its side after the COMMIT, and a
// cancel that came first would fail that close. Cancelling a stream read
// to its end does nothing.
func (h *opHandler) finish() {
	if h.credits != nil {
		defer h.credits.finished(h.str)
	} else {
		defer h.str.ReleaseStreamCredit()
	}
	if err := h.str.Close(); err != nil {
		h.log.Debug("op stream not closed", "error", err)
	}
	if h.pipelined || h.committing {
		h.in.deadline.setNow()
		// An error here (a reset, the timeout) only means the rest did not
		// come: the cancel below ends the stream either way.
		_, _ = io.Copy(io.Discard, io.LimitReader(h.in.reader(), maxPipelinedRest))
	}
	h.str.CancelRead(quic.StreamErrorCode(wire.CodeOK))
	h.fr.Free()
	h.in.close()
	h.dec.Free()
	if cap(h.buf) > 0 {
		h.mem.Release(cap(h.buf))
		h.buf = nil
	}
	if h.packedMem > 0 {
		h.mem.Release(h.packedMem)
		h.packedMem = 0
	}
}

// fail tells the agent what went wrong on this stream, as an ERROR frame
// (NACKs are sent where the op is known). A stream the agent reset, or
// whose connection is gone, is the agent's choice or the network's: it
// gets no answer and counts as no error of the core's. An internal error
// is logged and counted.
func (h *opHandler) fail(err error) {
	if peerEnded(err) {
		h.stats.streamsReset.Add(1)
		h.log.Debug("op stream ended by the agent or the network", "error", err)
		return
	}
	err = toWire(err)
	h.refusing(err)
	if wire.CodeOf(err) == wire.CodeInternal {
		h.stats.internalErrors.Add(1)
		h.log.Error("op stream failed", "error", err)
	} else {
		h.log.Debug("op stream refused", "code", wire.CodeOf(err).String(), "error", err)
	}
	if werr := wire.WriteFrame(h.str, wire.ErrorFrameFor(err)); werr != nil {
		// The stream is broken as well: the agent sees it end unanswered.
		h.log.Debug("error frame not sent", "error", werr)
	}
}

// peerEnded reports whether err says that the agent reset the stream or
// that the connection is gone: nothing the core could answer.
func peerEnded(err error) bool {
	if se, ok := errors.AsType[*quic.StreamError](err); ok {
		return se.Remote
	}
	_, app := errors.AsType[*quic.ApplicationError](err)
	_, idle := errors.AsType[*quic.IdleTimeoutError](err)
	_, reset := errors.AsType[*quic.StatelessResetError](err)
	_, transport := errors.AsType[*quic.TransportError](err)
	return app || idle || reset || transport
}

// readFrame reads the next frame of the op's stream within frameTimeout,
// if it is one of the types that may come now: any other is refused after
// its header, before its body is read.
func (h *opHandler) readFrame(types ...wire.FrameType) (wire.Frame, error) {
	h.in.deadline.next()
	f, err := h.fr.ReadFrameOf(types...)
	if err != nil && errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: stream ended before the op was committed", wire.ErrBadRequest)
	}
	return f, err
}

func (h *opHandler) nack(hdr *wire.OpHeader, err error) error {
	return h.answer(h.nackFrame(hdr, err))
}

// nackFrame counts and logs a refused op and returns its NACK.
func (h *opHandler) nackFrame(hdr *wire.OpHeader, err error) *wire.Nack {
	h.stats.opsNacked.Add(1)
	err = toWire(err)
	h.refusing(err)
	h.log.Info("op refused", "op", hdr.ID.String(), "key", hdr.Key, "code", wire.CodeOf(err).String(), "error", err)
	return wire.NackFor(hdr.ID, err)
}

func (h *opHandler) ack(hdr *wire.OpHeader) error {
	return h.answer(&wire.Ack{IDs: []edgesync.OpID{hdr.ID}})
}

// answer writes the op's last frame and closes the stream's send side
// right after, so that the FIN most often travels in the frame's packet:
// an answer without it has the agent, done reading, cancel the stream
// (STOP_SENDING), which the core must answer with a RESET_STREAM of a
// packet of its own (docs/core.md, "Packets per op"). finish's Close is
// then a no-op.
func (h *opHandler) answer(f wire.Frame) error {
	if err := wire.WriteFrame(h.str, f); err != nil {
		return err
	}
	if err := h.str.Close(); err != nil {
		h.log.Debug("op stream not closed", "error", err)
	}
	return nil
}

func (h *opHandler) op(hdr *wire.OpHeader) error {
	if h.packed && !hdr.Lane && hdr.PlainSize <= uint64(hdr.ChunkSize) {
		return h.packedOps(hdr) // perhaps the first of several (server_packed.go)
	}
	st := h.store
	h.pipelined = hdr.Eager || (!hdr.Lane && hdr.PlainSize <= uint64(hdr.ChunkSize))
	if hdr.PlainSize > uint64(h.maxOpBytes) {
		return h.nack(hdr, h.tooLarge(hdr))
	}
	if hdr.Lane && h.lane == nil {
		return h.nack(hdr, fmt.Errorf("%w: op data on the lane, which this connection did not negotiate", wire.ErrBadRequest))
	}
	if hdr.Lane {
		// However the attempt ends, its lane data is dropped from then on
		// (eager data may already be waiting for the op to register).
		defer h.lane.end(hdr.LaneTransfer, nil)
	}
	ph, ch, base, err := h.check(hdr)
	if err != nil {
		return h.nack(hdr, err)
	}
	if wa, ok := st.(WholeApplier); ok && !hdr.Lane && hdr.PlainSize <= uint64(hdr.ChunkSize) {
		return h.whole(wa, hdr, ph, ch, base)
	}
	h.receiving.begin(h.agent, hdr.ID)
	committed := false
	defer func() { h.receiving.end(h.store, h.agent, hdr.ID, committed, h.log) }()
	held, dup, err := st.BeginPartial(h.agent, ph)
	if err != nil {
		return h.nack(hdr, err)
	}
	if dup {
		h.applied(hdr, Result{Duplicate: true})
		committed = true // nothing was begun
		return h.ack(hdr)
	}
	// An op of one chunk came whole: the agent does not wait for where to
	// resume, and the ACK or NACK alone answers it, as on a store that
	// applies it whole (server_whole.go); a RESUME_ANSWER would cost a
	// packet of its own (docs/core.md, "Packets per op").
	if hdr.Lane || hdr.PlainSize > uint64(hdr.ChunkSize) {
		ans := &wire.ResumeAnswer{ID: hdr.ID, Held: uint64(held), Chunks: uint64(held) / uint64(ch.ChunkSize)}
		if err := wire.WriteFrame(h.str, ans); err != nil {
			return err
		}
	}
	if hdr.Lane {
		return h.laneOp(hdr, ch, base, held, &committed)
	}
	for {
		f, err := h.readFrame(wire.FrameData, wire.FrameCommit)
		if errors.Is(err, wire.ErrUnexpectedFrame) || errors.Is(err, wire.ErrBusy) {
			return h.nack(hdr, err)
		}
		if err != nil {
			return err // the partial stays for a resume
		}
		switch f := f.(type) {
		case *wire.Data:
			if f.ID != hdr.ID {
				return h.nack(hdr, fmt.Errorf("%w: DATA for op %s on the stream of %s", wire.ErrBadRequest, f.ID, hdr.ID))
			}
			if held, err = h.data(ch, base, f, held); err != nil {
				return h.nack(hdr, err)
			}
		case *wire.Commit:
			h.pipelined, h.committing = false, true // the agent sends nothing after COMMIT but its end
			if f.ID != hdr.ID {
				return h.nack(hdr, fmt.Errorf("%w: COMMIT for op %s on the stream of %s", wire.ErrBadRequest, f.ID, hdr.ID))
			}
			return h.commit(hdr, &committed)
		}
	}
}

func (h *opHandler) tooLarge(hdr *wire.OpHeader) error {
	return fmt.Errorf("%w: op of %d bytes, the core accepts %d", wire.ErrTooLarge, hdr.PlainSize, h.maxOpBytes)
}

// check checks an op's header beyond its size and lane: not expired, a
// delta's base current at the core, a valid codec header. It returns the
// op's store header, its codec header and a delta's base, or the error
// its NACK carries.
func (h *opHandler) check(hdr *wire.OpHeader) (PartialHeader, *codec.Header, *codec.Base, error) {
	if !hdr.Expires.IsZero() && hdr.Expires.Before(time.Now()) {
		return PartialHeader{}, nil, nil, fmt.Errorf("%w: op expired at %s", wire.ErrExpired, hdr.Expires.Format(time.RFC3339))
	}
	ch := &codec.Header{
		Mode:      codec.Mode(hdr.Mode),
		Level:     codec.LevelDefault, // the decoder does not depend on it
		ChunkSize: int(hdr.ChunkSize),
		Size:      int64(hdr.PlainSize),
		Hash:      codec.Hash(hdr.PayloadHash),
	}
	var base *codec.Base
	if ch.Mode.IsDelta() {
		if !hdr.HasBase {
			return PartialHeader{}, nil, nil, fmt.Errorf("%w: delta op without a base hash", wire.ErrBadRequest)
		}
		ver, obj, err := h.store.Current(h.agent, hdr.Key)
		if err != nil || ver.Hash != hdr.BaseHash {
			return PartialHeader{}, nil, nil, fmt.Errorf("%w: key %q has no version %.8x… at the core", wire.ErrBaseMismatch, hdr.Key, hdr.BaseHash)
		}
		base = &codec.Base{R: obj, Size: ver.Size, Hash: codec.Hash(ver.Hash)}
		ch.DeltaMargin = codec.DefaultDeltaMargin(ch.ChunkSize)
		ch.BaseSize, ch.BaseHash = ver.Size, codec.Hash(hdr.BaseHash)
	}
	if err := ch.Validate(codec.Limits{MaxSize: h.maxOpBytes, MaxChunkSize: codec.MaxChunkSize}); err != nil {
		return PartialHeader{}, nil, nil, fmt.Errorf("%w: %w", wire.ErrBadRequest, err)
	}
	ph := PartialHeader{
		OpID: hdr.ID, Key: hdr.Key, Kind: hdr.Kind, Priority: hdr.Priority,
		Size: int64(hdr.PlainSize), Hash: hdr.PayloadHash,
		HasBase: hdr.HasBase && ch.Mode.IsDelta(), BaseHash: hdr.BaseHash,
	}
	return ph, ch, base, nil
}

// commit makes a fully received op durable and visible, and answers. It
// sets *committed once the store has the op.
func (h *opHandler) commit(hdr *wire.OpHeader, committed *bool) error {
	res, err := h.store.CommitPartial(h.agent, hdr.ID)
	if err != nil {
		return h.nack(hdr, err)
	}
	*committed = true
	h.applied(hdr, res)
	return h.ack(hdr)
}

// applied counts an op the store has, applied now or before.
func (h *opHandler) applied(hdr *wire.OpHeader, res Result) {
	var n appliedTally
	n.add(h, hdr, res)
	n.count(h)
}

// appliedTally counts the ops a stream's answer acknowledges, so that the
// counters shared by the server's connections, and the agent's, are
// added to once per stream rather than once per op.
type appliedTally struct {
	stored, dups int64
	bytes        int64 // the plain bytes of those stored
}

// add counts an op the store has, applied now or before, and logs it.
func (n *appliedTally) add(h *opHandler, hdr *wire.OpHeader, res Result) {
	if res.Duplicate {
		n.dups++
	} else {
		n.stored++
		n.bytes += res.Size
	}
	if h.log.IsDebug() { // the op's fields are formatted only for a log that keeps them
		h.log.Debug("op stored", "op", hdr.ID.String(), "key", hdr.Key, "kind", hdr.Kind.String(), "bytes", res.Size)
	}
}

// count adds the tally to the server's counters and the agent's figures.
func (n *appliedTally) count(h *opHandler) {
	if n.stored > 0 {
		h.stats.full.stored(h.log)
		h.stats.opsApplied.Add(n.stored)
		h.stats.bytesApplied.Add(n.bytes)
	}
	if n.dups > 0 {
		h.stats.opsDuplicate.Add(n.dups)
	}
	if h.fig != nil && n.stored+n.dups > 0 {
		h.fig.received(n.stored+n.dups, n.bytes)
	}
}

// data decodes one chunk and stores the part of it beyond held; it returns
// the new held size.
func (h *opHandler) data(ch *codec.Header, base *codec.Base, d *wire.Data, held int64) (int64, error) {
	fresh, err := h.decode(ch, base, d, held)
	if err != nil || len(fresh) == 0 {
		return held, err
	}
	if err := h.store.WritePartial(h.agent, d.ID, held, fresh); err != nil {
		return h.heldElsewhere(d.ID, held, fresh, err)
	}
	return held + int64(len(fresh)), nil
}

// heldElsewhere handles a write of b at held that the store refused as
// out of order: on a shared store another core may have stored more of
// the op after this one answered where to resume (the core the agent
// left, storing lane data it had received; docs/jetstream.md, "Running
// several cores"). The store's word counts: what it holds is skipped and
// the rest of b written. Any other failure is returned as it was.
func (h *opHandler) heldElsewhere(id edgesync.OpID, held int64, b []byte, err error) (int64, error) {
	if !errors.Is(err, ErrOutOfOrder) {
		return held, err
	}
	now, ok := h.store.PartialSize(h.agent, id)
	if !ok || now <= held {
		return held, err
	}
	end := held + int64(len(b))
	if now >= end {
		return now, nil
	}
	if err := h.store.WritePartial(h.agent, id, now, b[now-held:]); err != nil {
		return now, err
	}
	return end, nil
}

// decode decodes one chunk into h.buf and returns its plain bytes beyond
// held, which follow held directly (none when it holds nothing new).
func (h *opHandler) decode(ch *codec.Header, base *codec.Base, d *wire.Data, held int64) ([]byte, error) {
	h.stats.bytesReceived.Add(int64(len(d.Chunk)))
	cs := uint64(ch.ChunkSize)
	if d.Offset%cs != 0 {
		return nil, fmt.Errorf("%w: DATA at offset %d, not a multiple of the chunk size %d", wire.ErrBadRequest, d.Offset, cs)
	}
	off := int64(d.Offset)
	if off > held {
		return nil, fmt.Errorf("%w: DATA at offset %d, but the core holds only %d bytes", wire.ErrBadRequest, off, held)
	}
	n := min(int64(cs), ch.Size-off)
	if off+n <= held {
		return nil, nil // held already (a resumed or eager transfer's overlap): no need to decode
	}
	buf, err := growBuffer(h.mem, h.buf, int(n))
	if err != nil {
		return nil, err
	}
	h.buf = buf
	plain, used, err := h.dec.DecodeChunk(h.buf, ch, off/int64(cs), d.Chunk, base)
	if err != nil {
		return nil, err
	}
	if used != len(d.Chunk) {
		return nil, fmt.Errorf("%w: DATA holds %d bytes after its chunk", wire.ErrCorrupt, len(d.Chunk)-used)
	}
	if off+int64(len(plain)) <= held {
		return nil, nil // already held (a resumed transfer's overlap)
	}
	return plain[held-off:], nil
}

func (h *opHandler) summary(sum *wire.Summary) error {
	return wire.WriteFrame(h.str, h.storeSummary(sum))
}

// storeSummary stores sum as its key's latest summary and returns the
// answer: ACK, or NACK with what refused it.
func (h *opHandler) storeSummary(sum *wire.Summary) wire.Frame {
	// The producer's bytes are copied out of the frame for the store:
	// the copy counts in the frame memory too while the store has it.
	err := h.mem.Reserve(len(sum.Producer))
	if err == nil {
		err = h.store.PutSummary(h.agent, Summary{
			OpID: sum.ID, Key: sum.Key, Size: int64(sum.Size), Hash: sum.Hash, Time: sum.Time,
			Bytes: append([]byte(nil), sum.Producer...),
		})
		h.mem.Release(len(sum.Producer))
	}
	if err != nil {
		err = toWire(err)
		h.refusing(err)
		return wire.NackFor(sum.ID, err)
	}
	h.stats.summaries.Add(1)
	return &wire.Ack{IDs: []edgesync.OpID{sum.ID}}
}

func (h *opHandler) resume(q *wire.ResumeQuery) error {
	st := h.store
	if ok, err := st.Applied(h.agent, q.ID); err == nil && ok {
		return wire.WriteFrame(h.str, &wire.ResumeAnswer{ID: q.ID, Complete: true})
	}
	// Without a partial (or with a store that fails) the answer is "none
	// held": the agent sends from the start, and its OP_HEADER meets the
	// store's answer, or its error, in BeginPartial.
	held, _ := st.PartialSize(h.agent, q.ID)
	return wire.WriteFrame(h.str, &wire.ResumeAnswer{ID: q.ID, Held: uint64(held)})
}

// receivers counts the op streams receiving each partial op, so that a
// partial op's reservation against the quota ends when the last of them
// ends without a commit (its connection closed, or the op sat idle past
// the frame timeout), and not while an agent that reconnected receives it
// again on a new stream.
type receivers struct {
	mu sync.Mutex
	n  map[receiverKey]int
}

type receiverKey struct {
	agent string
	op    edgesync.OpID
}

func newReceivers() *receivers { return &receivers{n: map[receiverKey]int{}} }

// begin counts a stream that starts receiving op; it comes before
// BeginPartial reserves the op's size.
func (r *receivers) begin(agent string, op edgesync.OpID) {
	r.mu.Lock()
	r.n[receiverKey{agent, op}]++
	r.mu.Unlock()
}

// end counts a stream that stops receiving op. When it was the last one
// and the op was not committed, the partial's reservation ends: what it
// holds stays for a resume. The release runs under the lock, so that a
// stream beginning meanwhile reserves again after it.
func (r *receivers) end(b Backend, agent string, op edgesync.OpID, committed bool, log hclog.Logger) {
	k := receiverKey{agent, op}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[k]--
	if r.n[k] > 0 {
		return
	}
	delete(r.n, k)
	if committed {
		return
	}
	st, ok := b.(PartialReleaser)
	if !ok {
		return
	}
	// Not found: the commit failed and the store dropped the partial.
	if err := st.ReleasePartial(agent, op); err != nil && !errors.Is(err, ErrNotFound) {
		log.Warn("partial op still reserves its declared size against the quota; the next restart ends that",
			"op", op.String(), "error", err)
	}
}

// toWire is the one place where the store's and the codec's errors become
// wire reason codes: it wraps err with the sentinel of its code, so that
// wire.CodeOf and wire.NackFor pick the right one.
func toWire(err error) error {
	var sentinel error
	switch {
	case errors.Is(err, ErrBaseMismatch), errors.Is(err, codec.ErrBaseMismatch):
		sentinel = wire.ErrBaseMismatch
	case errors.Is(err, ErrHashMismatch), errors.Is(err, codec.ErrHashMismatch):
		sentinel = wire.ErrHashMismatch
	case errors.Is(err, ErrQuota):
		sentinel = wire.ErrQuota
	case errors.Is(err, ErrTooLarge), errors.Is(err, codec.ErrTooLarge):
		sentinel = wire.ErrTooLarge
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrOutOfOrder), errors.Is(err, ErrIncomplete):
		sentinel = wire.ErrBadRequest
	case errors.Is(err, codec.ErrCorrupt):
		sentinel = wire.ErrCorrupt
	case errors.Is(err, ErrClosed):
		sentinel = wire.ErrShuttingDown
	case storeFull(err):
		sentinel = wire.ErrStoreFull
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The agent sent nothing for the frame timeout: not the core's
		// failure; it may retry.
		sentinel = wire.ErrBusy
	default:
		return err // wire errors keep their code; anything else is internal
	}
	if errors.Is(err, sentinel) {
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}
