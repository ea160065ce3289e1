package core

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/wire"
)

// The memory the core holds for frames in flight is bounded per
// connection and in all (ServerConfig.MaxFrameMemory and
// MaxConnFrameMemory). What counts is memory that follows what agents
// send: an op stream's frame buffer as its body arrives (wire.Reader with
// the connection's budget), a chunk's decoded bytes, the lane's received
// bytes (lane.Config.Budget) and lane data held for an op ahead of its
// turn. A declared length costs nothing until its bytes come. A
// reservation that does not fit fails at once with wire.ErrBusy (the op
// is refused busy and the agent sends it again later) rather than wait:
// a stream waiting for memory while holding some would wait on streams
// that wait on it, and the flow control of the QUIC connection would not
// let the bytes that could free it through.

// Besides frames, the frame memory counts what each op stream holds for
// as long as it lives, which its bytes do not size: its state is reserved
// in its connection's bound when it is accepted, and a stream that does
// not fit is answered ERROR busy without a goroutine of its own
// (streamRefuser). Without it, connections × streams each mid-op made the
// core hold far more than its bound (TestHostileFleetMemory;
// docs/core.md, "What a connection can make the core hold"). A
// connection's own state is bounded by their number (max_connections).

// streamStateCost is an op stream's state: its goroutine's stack (8 KiB,
// more while it decodes), its quic-go stream, the handler and its reader.
// Measured at about 13 KiB.
const streamStateCost = 16 << 10

// The frame memory bounds' defaults are the config file's
// (config.DefaultCore's limits).
const (
	// MinConnFrameMemory is the least a connection may be given: one
	// maximal DATA frame and its decoded chunk, so that any op can come,
	// with its stream's state (config.MinConnFrameMemory, a round figure
	// above it, is what a config file may set).
	MinConnFrameMemory = 2*wire.MaxFrameSize + 64<<10 + streamStateCost
)

// memBudget is a bound on bytes held: a connection's, drawing on the
// core's as well. It implements wire.Budget and so lane.Config.Budget.
type memBudget struct {
	what   string // "connection" or "core", for errors
	limit  int64
	parent *memBudget
	// refused counts reservations that did not fit (the server's stats).
	refused *atomic.Int64

	mu   sync.Mutex
	used int64
	peak int64
}

var _ wire.Budget = (*memBudget)(nil)

func newMemBudget(what string, limit int64, parent *memBudget, refused *atomic.Int64) *memBudget {
	return &memBudget{what: what, limit: limit, parent: parent, refused: refused}
}

// Reserve takes n bytes of this budget and its parent's, or none of either
// (wire.ErrBusy).
func (b *memBudget) Reserve(n int) error {
	if err := b.reserve(n); err != nil {
		b.refused.Add(1)
		return err
	}
	return nil
}

// tryReserve reserves n bytes as Reserve does, but a reservation that
// does not fit counts as no refusal: it is for memory a stream can do
// without (its read-ahead buffer, server_read.go).
func (b *memBudget) tryReserve(n int) bool { return b.reserve(n) == nil }

func (b *memBudget) reserve(n int) error {
	if err := b.take(int64(n)); err != nil {
		return err
	}
	if b.parent != nil {
		if err := b.parent.take(int64(n)); err != nil {
			b.give(int64(n))
			return err
		}
	}
	return nil
}

// Release gives back n bytes reserved before.
func (b *memBudget) Release(n int) {
	b.give(int64(n))
	if b.parent != nil {
		b.parent.give(int64(n))
	}
}

func (b *memBudget) take(n int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.limit {
		return fmt.Errorf("%w: frames in flight and open streams hold %s of the %s's %s (the core's limits.%s)", wire.ErrBusy,
			units.FormatBytes(b.used), b.what, units.FormatBytes(b.limit), b.setting())
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return nil
}

// setting names the core's config setting of the bound, for errors.
func (b *memBudget) setting() string {
	if b.parent != nil {
		return "max_frame_memory_per_connection"
	}
	return "max_frame_memory"
}

func (b *memBudget) give(n int64) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
}

// inUse returns the bytes reserved now and the most ever reserved at once.
func (b *memBudget) inUse() (used, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.peak
}

// maxDrainingRefusals bounds a connection's refused streams whose rest
// is being read (streamRefuser): each holds a goroutine and its quic-go
// stream outside the frame memory, as its state has no room there.
const maxDrainingRefusals = 4

// streamRefuser refuses the op streams of a connection whose frame memory
// has no room for their state, without holding what it refuses.
type streamRefuser struct {
	timeout  time.Duration // the frame timeout
	credits  *streamCredits
	log      hclog.Logger
	draining chan struct{} // a slot for each refused stream being read
	wg       sync.WaitGroup
}

func newStreamRefuser(timeout time.Duration, credits *streamCredits, log hclog.Logger) *streamRefuser {
	return &streamRefuser{timeout: timeout, credits: credits, log: log, draining: make(chan struct{}, maxDrainingRefusals)}
}

// refuse answers str with ERROR busy naming the limit (err), if the
// answer can be queued at once, and ends it. Up to maxDrainingRefusals at
// once, what the agent wrote at once is read and dropped first (up to one
// maximal DATA frame, within the frame timeout, as finish does), so that
// its write completes and it reads why; past them the rest is refused at
// once (STOP_SENDING), and the agent's write may fail. Either way the
// agent sends the ops again later, as for any busy. The accept loop never
// waits here: a connection that reads none of its unaccepted streams'
// bytes would fill its flow-control window with them and stall.
func (r *streamRefuser) refuse(str *quic.Stream, err error) {
	r.log.Debug("op stream refused: no frame memory for its state", "error", err)
	if b, aerr := wire.ErrorFrameFor(err).Append(nil); aerr == nil {
		_ = str.TryWriteAll(b) // a stream without room for it ends unanswered
	}
	if cerr := str.Close(); cerr != nil {
		r.log.Debug("refused op stream not closed", "error", cerr)
	}
	select {
	case r.draining <- struct{}{}:
		r.wg.Go(func() {
			defer func() { <-r.draining }()
			setReadTimeout(str, r.timeout)
			_, _ = io.Copy(io.Discard, io.LimitReader(str, maxPipelinedRest))
			r.end(str)
		})
	default:
		r.end(str)
	}
}

func (r *streamRefuser) end(str *quic.Stream) {
	str.CancelRead(quic.StreamErrorCode(wire.CodeBusy))
	r.credits.finished(str)
}

// wait waits for the refused streams being read: the connection's end
// ends them.
func (r *streamRefuser) wait() { r.wg.Wait() }

// capReceiveWindows keeps what quic-go may buffer for a connection,
// bytes that arrived but that the core has not read (behind a gap in a
// stream, or while its reader is busy), within the connection's frame
// memory, perConn: quic-go's own buffers are not reserved in it
// (docs/core.md, "What a connection can make the core hold").
func capReceiveWindows(qc *quic.Config, perConn int64) {
	w := uint64(perConn)
	qc.MaxConnectionReceiveWindow = min(qc.MaxConnectionReceiveWindow, w)
	qc.InitialConnectionReceiveWindow = min(qc.InitialConnectionReceiveWindow, qc.MaxConnectionReceiveWindow)
	qc.MaxStreamReceiveWindow = min(qc.MaxStreamReceiveWindow, qc.MaxConnectionReceiveWindow)
	qc.InitialStreamReceiveWindow = min(qc.InitialStreamReceiveWindow, qc.MaxStreamReceiveWindow)
}

// growBuffer returns buf with room for n bytes, its growth reserved in
// b; the caller releases cap of the result when it drops it.
func growBuffer(b wire.Budget, buf []byte, n int) ([]byte, error) {
	if cap(buf) >= n {
		return buf[:0], nil
	}
	if err := b.Reserve(n - cap(buf)); err != nil {
		return buf[:0], err
	}
	return make([]byte, 0, n), nil
}
