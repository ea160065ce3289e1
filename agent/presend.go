package agent

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire/lane"
)

// This file sends a large op's first chunks while the outbox still writes
// it (docs/design.md, "Sending while the outbox writes"). The put is
// answered only once the op is durable, and the core stores the op only
// after its OP_HEADER (with the payload's hash, known once the outbox has
// read every byte) and COMMIT, which the sender sends once the outbox holds
// the op; but the link need not sit idle meanwhile. While Enqueue streams
// the producer's bytes to disk, a presend encodes the chunks as they pass
// and hands up to the lane's window of them to the data lane under a fresh
// lane transfer number: the core holds lane data that comes ahead of its
// header (docs/wire.md). The attempt that sends the op then adopts those
// batches: its header names the presend's transfer and its data goes on
// from the chunk after them. Anything else (the put failed, the attempt
// came under other parameters, on another connection, or not within
// presendTTL) abandons them: the lane resets the transfers and the core
// drops what it holds of them (lane.Config.Abandoned).

// presendTTL bounds how long a presend's batches wait to be adopted, from
// its first launch: well inside the 10 s the core holds lane data for an
// op whose header has not come, so that it never drops data an attempt
// still counts on.
const presendTTL = 5 * time.Second

// presendMaxRTT is the round trip from which ops do not presend. On a
// 600 ms link the outbox write is a few per cent of a transfer at most,
// and on 10 Mbit/s, 600 ms, 1 % loss (goodput row 2, docs/linksim.md, "The
// goodput rows") transfers with a presend reached 0.69 of the link against
// 0.81 without (6 runs each, alternating), for reasons not found yet.
const presendMaxRTT = 200 * time.Millisecond

// presend is a large op's first chunks, sent on a connection's data lane
// while the outbox writes the op.
type presend struct {
	ln  *laneLink
	num uint64 // lane transfer number (OpHeader.LaneTransfer on adoption)
	t   *opTransfer
	enc *opSender
	// warmed is closed once warm has run (presend_warm.go); enc is the
	// presend's only after it.
	warmed chan struct{}
	// window is the most encoded bytes it launches, batches the most
	// lane transfers.
	window  int64
	batches int

	ctx    context.Context
	cancel context.CancelFunc
	sends  sync.WaitGroup

	mu       sync.Mutex
	closed   bool // abandoned or adopted: nothing more is launched
	adopted  bool
	first    time.Time // first launch
	next     int64     // next chunk to encode
	buf      []byte    // bytes of chunk next gathered so far
	queue    []*laneBatch
	inFlight int64
	timer    *time.Timer
}

// startPresend returns a presend for op n on the endpoint's current lane,
// or nil when the op would not go at once as one large transfer from its
// first chunk (no lane, a size the producer did not declare or within one
// chunk, a summary or delta to come first, or another transfer in flight)
// or the link is long (presendMaxRTT).
func (e *endpoint) startPresend(ob *outbox.Outbox, n outbox.NewOp) *presend {
	ln := e.lane.Load()
	sized, ok := n.Payload.(interface{ Len() int })
	if ln == nil || !ok || n.Priority.SendsAtOnce() {
		return nil
	}
	if st := ln.s.Stats(); st.MinRTT <= 0 || st.MinRTT >= presendMaxRTT {
		return nil
	}
	p, _, _ := e.params()
	size := int64(sized.Len())
	chunk := chunkSizeOf(p)
	delta := p.Mode != edgesync.SyncFull && p.Mode != edgesync.SyncFullZstd
	if size <= int64(chunk) || (n.Kind == edgesync.StateOp && delta) || p.SummaryFirst(n.Priority) ||
		e.budget != nil || e.transfers.busy(int64(chunk)) {
		return nil
	}
	ch, err := codec.NewHeader(codecMode(p, false), codecLevel(p), chunk, size, codec.Hash{}, nil)
	if err != nil {
		return nil
	}
	op := &outbox.Op{ID: ob.NewID(), Endpoint: n.Endpoint, Key: n.Key, Priority: n.Priority, Kind: n.Kind, Size: size}
	ctx, cancel := context.WithCancel(context.Background())
	pre := &presend{ln: ln, num: ln.nextTransfer(), enc: newOpSender(), window: lane.OpWindow(chunk), batches: laneBatches,
		t: &opTransfer{op: op, ch: ch, res: &sendResult{}}, ctx: ctx, cancel: cancel, warmed: make(chan struct{})}
	if !ln.addPresend(pre) {
		cancel()
		return nil
	}
	pre.sends.Go(pre.warm)
	return pre
}

// reader returns the producer's payload r, whose bytes now also feed the
// presend as Enqueue reads them.
func (p *presend) reader(r io.Reader) io.Reader { return &presendReader{r: r, p: p} }

// presendReader passes the producer's bytes to the outbox and a copy to
// the presend; Len is the producer's (the outbox's size hint).
type presendReader struct {
	r io.Reader
	p *presend
}

func (r *presendReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	if n > 0 {
		r.p.feed(b[:n])
	}
	return n, err
}

func (r *presendReader) Len() int { return r.r.(interface{ Len() int }).Len() }

// feed takes the next bytes of the payload and launches each chunk they
// complete, until the window is full.
func (p *presend) feed(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(b) > 0 && !p.closed {
		off, n, ok := p.t.ch.ChunkRange(p.next)
		if !ok || p.inFlight >= p.window || len(p.queue) >= p.batches {
			return // the window is full: the attempt sends the rest
		}
		k := min(n-len(p.buf), len(b))
		p.buf = append(p.buf, b[:k]...)
		b = b[k:]
		if len(p.buf) < n {
			return
		}
		if p.next == 0 {
			<-p.warmed // at most the rest of a chunk's encoding
		}
		p.t.pl = chunkAt{off: off, b: p.buf}
		frames, err := p.enc.dataFrame(nil, p.t, p.next)
		p.buf = p.buf[:0]
		if err != nil {
			p.window = 0 // launch no more; what is launched stays good
			return
		}
		p.launchLocked(frames, off+int64(n))
	}
}

// launchLocked sends the DATA frame of chunk p.next, which ends at payload
// offset end, as one lane transfer.
func (p *presend) launchLocked(frames []byte, end int64) {
	if p.first.IsZero() {
		p.ln.hint() // as an attempt does before its first batch
		p.first = time.Now()
		p.timer = time.AfterFunc(presendTTL, p.abandon)
	}
	b := &laneBatch{frames: frames, end: end, done: make(chan error, 1)}
	id := laneID(p.num, p.next)
	p.next++
	p.queue = append(p.queue, b)
	p.inFlight += int64(len(frames))
	urgency := int8(p.t.op.Priority)
	p.sends.Go(func() { b.done <- p.ln.s.Send(p.ctx, id, 0, b.frames, urgency) })
}

// enqueued ends the feeding: a failed Enqueue abandons the presend, and
// so does one that launched nothing (its timer never runs).
func (p *presend) enqueued(err error) {
	if p == nil {
		return
	}
	p.mu.Lock()
	launched := p.next > 0
	p.mu.Unlock()
	if err != nil || !launched {
		p.abandon()
	}
}

// closeLocked stops launches.
func (p *presend) closeLocked() {
	p.closed = true
	p.buf = nil
	if p.timer != nil {
		p.timer.Stop()
	}
}

// abandon gives up the presend unless an attempt adopted it: its lane
// transfers are reset, and it waits for their Send calls to return.
func (p *presend) abandon() {
	if p == nil {
		return
	}
	p.mu.Lock()
	adopted, first := p.adopted, !p.closed
	p.closeLocked()
	p.mu.Unlock()
	if first {
		if adopted {
			p.ln.preAdopted.Add(1)
		} else {
			p.ln.preAbandoned.Add(1)
		}
	}
	p.ln.removePresend(p)
	if adopted {
		return // the attempt stops it
	}
	p.stop()
}

// stop cancels the presend's lane transfers still in flight and waits for
// their Send calls.
func (p *presend) stop() {
	p.cancel()
	p.sends.Wait()
}

// adopt hands the presend's batches, and its encoding, to the attempt
// that sends its op as t, and returns the chunk the attempt goes on from;
// ok is false (and the presend abandoned) when the attempt cannot take
// them: another size, a delta base, or the presend given up.
func (p *presend) adopt(t *opTransfer) (queue []*laneBatch, inFlight, next int64, ok bool) {
	p.mu.Lock()
	ok = !p.closed && p.next > 0 && t.cb == nil && t.op.ID == p.t.op.ID && t.op.Size == p.t.ch.Size &&
		time.Since(p.first) < presendTTL
	if ok {
		p.adopted = true
		// The attempt goes on in the presend's encoding (the sync
		// parameters' chunk size follows the measured link, and may have
		// moved since), with the hash the outbox took.
		ch := p.t.ch
		ch.Hash = t.ch.Hash
		t.ch, t.res.mode = ch, ch.Mode
		queue, inFlight, next = p.queue, p.inFlight, p.next
		p.queue = nil
		t.res.plainBytes += p.t.res.plainBytes
		t.res.wireBytes += p.t.res.wireBytes
	}
	p.mu.Unlock()
	p.abandon() // adopted: only stops the timer and forgets it
	return queue, inFlight, next, ok
}

// chunkAt is one chunk's bytes at its payload offset, as the io.ReaderAt
// dataFrame reads a chunk from.
type chunkAt struct {
	off int64
	b   []byte
}

func (c chunkAt) ReadAt(b []byte, off int64) (int, error) {
	if off < c.off || off-c.off > int64(len(c.b)) {
		return 0, fmt.Errorf("presend chunk at %d: read at %d: %w", c.off, off, io.ErrUnexpectedEOF)
	}
	n := copy(b, c.b[off-c.off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

// busy reports whether a transfer of more than chunk bytes is in flight
// (one that takes the link for a while; small ops come and go).
func (ts *transfers) busy(chunk int64) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, p := range ts.m {
		if p.op.Size > chunk {
			return true
		}
	}
	return false
}

// addPresend records a presend started on the lane; false when the lane
// has ended or holds another: the core delivers lane data in order, and
// data waiting for one op's header would hold up the other's.
func (l *laneLink) addPresend(p *presend) bool {
	l.preMu.Lock()
	defer l.preMu.Unlock()
	if l.preEnded || len(l.pre) > 0 {
		return false
	}
	if l.pre == nil {
		l.pre = map[edgesync.OpID]*presend{}
	}
	l.pre[p.t.op.ID] = p
	return true
}

func (l *laneLink) removePresend(p *presend) {
	l.preMu.Lock()
	defer l.preMu.Unlock()
	if l.pre[p.t.op.ID] == p {
		delete(l.pre, p.t.op.ID)
	}
}

// takePresend returns the presend of op id on this lane, if any; the
// caller adopts or abandons it. It is nil-safe.
func (l *laneLink) takePresend(id edgesync.OpID) *presend {
	if l == nil {
		return nil
	}
	l.preMu.Lock()
	defer l.preMu.Unlock()
	p := l.pre[id]
	delete(l.pre, id)
	return p
}

// endPresends abandons every presend of a lane whose connection ended.
func (l *laneLink) endPresends() {
	l.preMu.Lock()
	l.preEnded = true
	ps := l.pre
	l.pre = nil
	l.preMu.Unlock()
	for _, p := range ps {
		p.abandon()
	}
}

// adopt takes the batches of the attempt's presend, if it has one that
// fits (presend.adopt): the transfer goes on under its lane transfer
// number from the chunk after them.
func (l *laneTransfer) adopt(a *attempt) bool {
	if a.pre == nil {
		return false
	}
	queue, inFlight, next, ok := a.pre.adopt(l.opTransfer)
	if !ok {
		return false
	}
	l.pre, l.num = a.pre, a.pre.num
	l.queue, l.inFlight, l.next = queue, inFlight, next
	return true
}
