package linkmon

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/wire"
)

// PongResult is one answered ping: its sequence number, round trip and
// arrival time.
type PongResult struct {
	Seq uint64
	RTT time.Duration
	At  time.Time
}

// TrainResult is the outcome of one packet train.
type TrainResult struct {
	// Bps is the capacity estimate, valid when OK.
	Bps float64
	// OK is false when the report said too little arrived to estimate.
	OK bool
	// Count and Received are the packets sent and the packets the
	// responder saw.
	Count, Received int
	// Bytes is what the train put on the wire (UDP payload bytes).
	Bytes int
}

// datagramOverhead approximates the QUIC bytes around a datagram frame
// (short header, packet number, AEAD tag, frame header) for budget
// accounting of pings.
const datagramOverhead = 32

// maxPendingReports bounds the trains waiting for a report.
const maxPendingReports = 16

// Prober is the agent side of active measurement over one QUIC connection:
// pings as QUIC datagrams (answered by the core's Responder with pongs)
// and packet trains as sealed raw packets written unpaced with
// quic.Transport.WriteTo on the connection's own socket (answered with a
// ProbeReport datagram). It owns the connection's ReceiveDatagram: nothing
// else on the agent may read datagrams from that connection. Start it with
// NewProber; Close stops its reader goroutine.
type Prober struct {
	conn  *quic.Conn
	tr    *quic.Transport
	key   wire.ProbeKey
	epoch time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	pongs chan PongResult

	mu      sync.Mutex
	reports map[uint64]chan *wire.ProbeReport

	pingSeq   atomic.Uint64
	trainSeq  atomic.Uint64
	sentBytes atomic.Int64
}

// NewProber derives the probe key of session (Welcome.ProbeSession) from
// conn's TLS exporter and starts reading conn's datagrams. tr must be the
// transport conn was dialled on, so that trains share its socket and path.
func NewProber(conn *quic.Conn, tr *quic.Transport, session uint64) (*Prober, error) {
	if conn == nil || tr == nil {
		return nil, fmt.Errorf("new prober: %w: nil connection or transport", ErrNotAttached)
	}
	st := conn.ConnectionState()
	if !st.SupportsDatagrams.Local || !st.SupportsDatagrams.Remote {
		return nil, fmt.Errorf("new prober: %w", ErrNoDatagrams)
	}
	key, err := wire.DeriveProbeKey(&st.TLS, session)
	if err != nil {
		return nil, fmt.Errorf("new prober: %w", err)
	}
	ctx, cancel := context.WithCancel(conn.Context())
	p := &Prober{
		conn: conn, tr: tr, key: key, epoch: time.Now(),
		ctx: ctx, cancel: cancel,
		pongs:   make(chan PongResult, 64),
		reports: make(map[uint64]chan *wire.ProbeReport),
	}
	p.wg.Add(1)
	go p.readDatagrams()
	return p, nil
}

// Close stops the prober's reader and waits for it; it does not close
// the connection. It is idempotent and cannot fail: the error is there
// for the lifecycle convention (docs/architecture.md#lifecycle).
func (p *Prober) Close() error {
	p.cancel()
	p.wg.Wait()
	return nil
}

// Pongs delivers answered pings. Pongs that find the channel full are
// dropped (and then count as lost).
func (p *Prober) Pongs() <-chan PongResult { return p.pongs }

// Done is closed when the prober stops (Close or the connection's end).
func (p *Prober) Done() <-chan struct{} { return p.ctx.Done() }

// SentBytes returns the probe bytes sent so far: pings and trains.
func (p *Prober) SentBytes() int64 { return p.sentBytes.Load() }

func (p *Prober) since() time.Duration { return time.Since(p.epoch) }

func (p *Prober) readDatagrams() {
	defer p.wg.Done()
	for {
		b, err := p.conn.ReceiveDatagram(p.ctx)
		if err != nil {
			return
		}
		at := time.Now()
		f, _, err := wire.Parse(b)
		if err != nil {
			continue
		}
		switch f := f.(type) {
		case *wire.Pong:
			rtt := at.Sub(p.epoch) - f.Echo
			if rtt < 0 || f.Seq > p.pingSeq.Load() {
				continue // not one of ours
			}
			select {
			case p.pongs <- PongResult{Seq: f.Seq, RTT: rtt, At: at}:
			default:
			}
		case *wire.ProbeReport:
			p.mu.Lock()
			ch := p.reports[f.TrainID]
			p.mu.Unlock()
			if ch != nil {
				select {
				case ch <- f:
				default:
				}
			}
		}
	}
}

// Ping sends one ping and returns its sequence number and its cost in
// bytes (the ping's packet and the acknowledgement of its pong).
func (p *Prober) Ping() (seq uint64, cost int, err error) {
	seq = p.pingSeq.Add(1)
	f := &wire.Ping{Seq: seq, Sent: p.since()}
	b, err := f.Append(nil)
	if err != nil {
		return seq, 0, fmt.Errorf("ping: %w", err)
	}
	if err := p.conn.SendDatagram(b); err != nil {
		return seq, 0, fmt.Errorf("ping: %w", err)
	}
	cost = 2 * (len(b) + datagramOverhead)
	p.sentBytes.Add(int64(cost))
	return seq, cost, nil
}

// trainFrameSize makes every sealed train packet ProbePacketSize bytes.
const trainFrameSize = ProbePacketSize - 1 - 8 - wire.ProbeTagLen

// Train sends one train of packets back to back, unpaced, and waits for
// the responder's report until ctx ends. The estimate is TrainEstimate
// over the report: (received−1)·S/Δ with S the packet's UDP payload size.
func (p *Prober) Train(ctx context.Context, packets int) (TrainResult, error) {
	packets = max(2, min(packets, wire.MaxTrainCount))
	id := p.trainSeq.Add(1)
	ch := make(chan *wire.ProbeReport, 1)
	p.mu.Lock()
	if len(p.reports) >= maxPendingReports {
		p.mu.Unlock()
		return TrainResult{}, fmt.Errorf("train: %d trains await a report: %w", maxPendingReports, ErrProbeTimeout)
	}
	p.reports[id] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.reports, id)
		p.mu.Unlock()
	}()

	// Seal every packet first so that the sends go back to back.
	buf := make([]byte, 0, packets*ProbePacketSize)
	offs := make([]int, 0, packets+1)
	sent := p.since()
	for i := range packets {
		f := &wire.ProbeTrain{TrainID: id, Index: uint32(i), Count: uint32(packets), Sent: sent}
		if err := f.PadTo(trainFrameSize); err != nil {
			return TrainResult{}, fmt.Errorf("train: %w", err)
		}
		offs = append(offs, len(buf))
		var err error
		if buf, err = wire.AppendProbe(buf, p.key, f); err != nil {
			return TrainResult{}, fmt.Errorf("train: %w", err)
		}
	}
	offs = append(offs, len(buf))
	to := p.conn.RemoteAddr()
	res := TrainResult{Count: packets}
	for i := range packets {
		n, err := p.tr.WriteTo(buf[offs[i]:offs[i+1]], to)
		res.Bytes += n
		if err != nil {
			p.sentBytes.Add(int64(res.Bytes))
			return res, fmt.Errorf("train: %w", err)
		}
	}
	p.sentBytes.Add(int64(res.Bytes))

	select {
	case r := <-ch:
		res.Received = int(r.Received)
		res.Bps, res.OK = estimateFromReport(r, res.Bytes/packets)
		return res, nil
	case <-ctx.Done():
		return res, fmt.Errorf("train %d: no report: %w", id, ErrProbeTimeout)
	case <-p.ctx.Done():
		return res, fmt.Errorf("train %d: %w", id, ErrNotAttached)
	}
}

// estimateFromReport runs TrainEstimate on a report's aggregate figures:
// the packets that arrived, spread between First and Last. When more than
// half is lost but at least MinTrainPackets arrived, the arrivals alone
// are measured (see below). When at most a
// tenth of the train is missing, the missing packets are counted as having
// crossed the bottleneck: a short train meets an empty queue, so its
// losses are wire losses after the bottleneck or drops in the receiver's
// queue (quic-go keeps 32 non-QUIC packets), which took bottleneck time
// like the others; leaving them out would underestimate the capacity.
func estimateFromReport(r *wire.ProbeReport, size int) (float64, bool) {
	if r.Count < 2 || r.Received > r.Count {
		return 0, false
	}
	sizes := make([]int, r.Count)
	arrivals := make([]time.Time, r.Count)
	base := time.Unix(0, 0)
	got := int(r.Received)
	switch {
	case got >= 2 && 10*got >= 9*int(r.Count):
		got = int(r.Count)
	case 2*got < int(r.Count) && got >= MinTrainPackets:
		// Most of the train was lost: a train far longer than the link's
		// queue, on a link that got slower. The packets that arrived were
		// served at the bottleneck rate one after the other (the dropped
		// ones took no time there), so they still give the capacity.
		sizes, arrivals = sizes[:got], arrivals[:got]
	}
	for i := range got {
		sizes[i] = size
		arrivals[i] = base.Add(r.First)
	}
	if got > 0 {
		arrivals[got-1] = base.Add(r.Last)
	}
	return TrainEstimate(sizes, arrivals)
}
