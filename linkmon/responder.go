package linkmon

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/wire"
)

// Responder bounds.
const (
	// maxOpenTrains is how many trains of one session are counted at once;
	// a new train past it evicts the oldest, unreported.
	maxOpenTrains = 4
	// recentTrains remembers reported train IDs so that replays are dropped.
	recentTrains = 16
	// trainQuiet: a train that lost packets is reported this long after
	// its last arrival, or sooner once its arrivals show their spacing
	// (see quiet).
	trainQuiet = 250 * time.Millisecond
	// minTrainQuiet is the shortest wait for a train's missing packets.
	minTrainQuiet = 50 * time.Millisecond
)

// quiet is how long to wait for more of a train after its latest arrival:
// ten times the mean spacing of its arrivals so far, within
// minTrainQuiet..trainQuiet. A train that overflowed a slow link's queue
// is reported about 50 ms after its last survivor, not 250 ms.
func (t *trainCount) quiet() time.Duration {
	if t.received < 3 {
		return trainQuiet
	}
	gap := (t.last - t.first) / time.Duration(t.received-1)
	return min(trainQuiet, max(minTrainQuiet, 10*gap))
}

// ResponderStats counts what a Responder did.
type ResponderStats struct {
	Pings   uint64 // pings answered
	Reports uint64 // train reports sent
	Packets uint64 // train packets accepted
	// Forged counts raw packets dropped because they failed
	// authentication or named no registered session.
	Forged uint64
	// Dropped counts authentic packets dropped: replays, packets of an
	// evicted or already reported train, undecodable datagrams.
	Dropped uint64
}

// Responder is the core side of active measurement: it answers pings that
// arrive as QUIC datagrams with pongs, and counts sealed probe-train
// packets that arrive as raw packets on the core's socket, answering each
// train with a ProbeReport datagram. Sessions are registered per
// connection with their probe key. Safe for concurrent use; Close stops
// its report timers.
type Responder struct {
	log   hclog.Logger
	epoch time.Time

	mu       sync.Mutex
	sessions map[uint64]*respSession
	closed   bool
	wg       sync.WaitGroup

	pings, reports, packets, forged, dropped atomic.Uint64
}

type respSession struct {
	conn   *quic.Conn
	key    wire.ProbeKey
	trains []*trainCount // open trains, oldest first
	done   [recentTrains]uint64
	doneN  int
}

type trainCount struct {
	id       uint64
	count    uint32
	received uint32
	bytes    uint64
	first    time.Duration
	last     time.Duration
	seen     []uint64 // bitset of indexes
	timer    *time.Timer
}

// NewResponder returns a Responder with no sessions; log may be nil.
func NewResponder(log hclog.Logger) *Responder {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Responder{log: log, epoch: time.Now(), sessions: make(map[uint64]*respSession)}
}

// ProbeKeyFor derives the probe key of a session on the core's side of
// conn; the agent derives the same key from its side.
func ProbeKeyFor(conn *quic.Conn, session uint64) (wire.ProbeKey, error) {
	st := conn.ConnectionState()
	return wire.DeriveProbeKey(&st.TLS, session)
}

// Register makes sealed packets of key.Session acceptable and answers them
// on conn. sessionID must equal key.Session.
func (r *Responder) Register(conn *quic.Conn, sessionID uint64, key wire.ProbeKey) error {
	if conn == nil || key.Session != sessionID {
		return fmt.Errorf("register probe session %#x: %w: nil connection or key of session %#x", sessionID, ErrInvalidSession, key.Session)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return fmt.Errorf("register probe session %#x: %w", sessionID, ErrClosed)
	}
	if _, ok := r.sessions[sessionID]; ok {
		return fmt.Errorf("register probe session %#x: %w: already registered", sessionID, ErrInvalidSession)
	}
	r.sessions[sessionID] = &respSession{conn: conn, key: key}
	return nil
}

// Unregister forgets a session and its open trains.
func (r *Responder) Unregister(sessionID uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sessions[sessionID]; ok {
		for _, t := range s.trains {
			t.timer.Stop()
		}
		delete(r.sessions, sessionID)
	}
}

// Close forgets every session, stops the report timers and waits for
// reports being sent; a timer that fired meanwhile finds the responder
// closed and sends nothing. Register fails after Close. It is idempotent
// and cannot fail: the error is there for the lifecycle convention
// (docs/architecture.md#lifecycle).
func (r *Responder) Close() error {
	r.mu.Lock()
	r.closed = true
	for id, s := range r.sessions {
		for _, t := range s.trains {
			t.timer.Stop()
		}
		delete(r.sessions, id)
	}
	r.mu.Unlock()
	r.wg.Wait()
	return nil
}

// Stats returns the counters.
func (r *Responder) Stats() ResponderStats {
	return ResponderStats{Pings: r.pings.Load(), Reports: r.reports.Load(), Packets: r.packets.Load(),
		Forged: r.forged.Load(), Dropped: r.dropped.Load()}
}

// HandleDatagram handles one QUIC datagram received on conn: a Ping is
// answered with a Pong; anything else is dropped and counted. It may block
// while conn's datagram send queue is full, so call it from the
// connection's own datagram loop.
func (r *Responder) HandleDatagram(conn *quic.Conn, b []byte) {
	f, _, err := wire.Parse(b)
	if err != nil {
		r.dropped.Add(1)
		return
	}
	p, ok := f.(*wire.Ping)
	if !ok {
		r.dropped.Add(1)
		return
	}
	pong := &wire.Pong{Seq: p.Seq, Echo: p.Sent, Sent: time.Since(r.epoch)}
	out, err := pong.Append(nil)
	if err != nil {
		r.dropped.Add(1)
		return
	}
	if conn.SendDatagram(out) == nil {
		r.pings.Add(1)
	}
}

// HandleRawPacket handles one non-QUIC packet whose first byte is
// wire.ProbeMagic, read from the core's transport. It timestamps the
// arrival at once, so call it straight from the read loop; it never
// blocks on the network (reports are sent from timer goroutines).
func (r *Responder) HandleRawPacket(b []byte, from net.Addr) {
	at := time.Since(r.epoch)
	id, err := wire.ProbeSessionOf(b)
	if err != nil {
		r.forged.Add(1)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sessions[id]
	if s == nil {
		r.forged.Add(1)
		return
	}
	f, err := wire.OpenProbe(s.key, b)
	if err != nil {
		r.forged.Add(1)
		return
	}
	p, ok := f.(*wire.ProbeTrain)
	if !ok {
		r.dropped.Add(1)
		return
	}
	t := s.train(r, id, p)
	if t == nil {
		r.dropped.Add(1)
		return
	}
	word, bit := p.Index/64, uint64(1)<<(p.Index%64)
	if t.seen[word]&bit != 0 {
		r.dropped.Add(1)
		return
	}
	t.seen[word] |= bit
	r.packets.Add(1)
	if t.received == 0 {
		t.first = at
	}
	t.received++
	t.bytes += uint64(p.Len())
	t.last = max(t.last, at)
	if t.received == t.count {
		t.timer.Reset(0)
	} else {
		t.timer.Reset(t.quiet())
	}
}

// train finds or opens the count of p's train; nil if the train was
// reported already or does not match its first packet.
func (s *respSession) train(r *Responder, session uint64, p *wire.ProbeTrain) *trainCount {
	for _, t := range s.trains {
		if t.id == p.TrainID {
			if t.count != p.Count {
				return nil
			}
			return t
		}
	}
	for i := range min(s.doneN, recentTrains) {
		if s.done[i] == p.TrainID {
			return nil
		}
	}
	if len(s.trains) >= maxOpenTrains {
		s.trains[0].timer.Stop()
		s.trains = s.trains[1:]
	}
	t := &trainCount{id: p.TrainID, count: p.Count, seen: make([]uint64, (p.Count+63)/64)}
	t.timer = time.AfterFunc(trainQuiet, func() { r.report(session, t) })
	s.trains = append(s.trains, t)
	return t
}

// report sends the report of train t of session, once.
func (r *Responder) report(session uint64, t *trainCount) {
	r.mu.Lock()
	s := r.sessions[session]
	if r.closed || s == nil {
		r.mu.Unlock()
		return
	}
	found := false
	for i, o := range s.trains {
		if o == t {
			s.trains = append(s.trains[:i:i], s.trains[i+1:]...)
			found = true
			break
		}
	}
	if !found {
		r.mu.Unlock()
		return
	}
	s.done[s.doneN%recentTrains] = t.id
	s.doneN++
	rep := &wire.ProbeReport{TrainID: t.id, Count: t.count, Received: t.received, Bytes: t.bytes, First: t.first, Last: t.last}
	conn := s.conn
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	b, err := rep.Append(nil)
	if err != nil {
		r.log.Debug("probe report", "error", err)
		return
	}
	if err := conn.SendDatagram(b); err == nil {
		r.reports.Add(1)
	}
}
