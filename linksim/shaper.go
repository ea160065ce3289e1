package linksim

import (
	"container/heap"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// releaseSlack lets one wakeup release packets due a little later, so a
// 100 Mbit/s stream does not need one timer per packet, and the timer is
// set this much before the first due packet to absorb wakeup latency.
// Packets leave at most this much early; rates stay exact because
// departures are computed, not slept.
const releaseSlack = 300 * time.Microsecond

// defaultMaxHeld caps the bytes one direction holds (queued plus in
// flight), whatever the profile says.
const defaultMaxHeld = 64 << 20

// poolBufSize is the capacity of pooled packet buffers; larger datagrams
// get their own allocation.
const poolBufSize = 2048

// packet is one datagram on its way through a shaper.
type packet struct {
	data []byte
	due  time.Time
	seq  uint64
	to   net.Addr // destination, for the sink
	via  any      // sink-specific route (e.g. a relay mapping)
}

var packetPool = sync.Pool{New: func() any { return &packet{data: make([]byte, 0, poolBufSize)} }}

// newPacket returns a packet holding a copy of b.
func newPacket(b []byte) *packet {
	p := packetPool.Get().(*packet)
	if len(b) > cap(p.data) {
		p.data = make([]byte, 0, len(b))
	}
	p.data = append(p.data[:0], b...)
	return p
}

// free returns p to the pool.
func (p *packet) free() {
	if cap(p.data) != poolBufSize {
		return
	}
	p.to, p.via = nil, nil
	p.data = p.data[:0]
	packetPool.Put(p)
}

type pktHeap []*packet

func (h pktHeap) Len() int { return len(h) }
func (h pktHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].seq < h[j].seq
	}
	return h[i].due.Before(h[j].due)
}
func (h pktHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pktHeap) Push(x any)   { *h = append(*h, x.(*packet)) }
func (h *pktHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return p
}

// DirStats is a snapshot of one direction's counters.
type DirStats struct {
	// Packets and Bytes count datagrams handed to the far side.
	Packets, Bytes uint64
	// DroppedQueue counts tail drops at a full queue.
	DroppedQueue uint64
	// DroppedLoss counts random, bursty and handover losses.
	DroppedLoss uint64
	// DroppedOutage counts packets that arrived or were in flight during
	// an outage.
	DroppedOutage uint64
	// QueueDelay is how long a packet arriving now would wait for
	// serialisation.
	QueueDelay time.Duration
	// Held is the number of packets queued or in flight.
	Held int
}

// shaper is one direction of a link: a serialiser with a tail-drop queue,
// a delay line, and loss. One scheduler goroutine releases packets at their
// due time to sink.
type shaper struct {
	dyn     *dynamics
	sink    func(*packet) // runs on the scheduler goroutine; owns p (frees it)
	maxHeld int64

	mu         sync.Mutex
	dir        Direction
	limBytes   int64
	rng        *rand.Rand
	geBad      bool
	lastDepart time.Time
	lastDue    time.Time
	q          pktHeap
	held       int64
	seq        uint64
	stopped    bool

	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup

	packets, bytes                atomic.Uint64
	dropQueue, dropLoss, dropDown atomic.Uint64
}

func newShaper(dyn *dynamics, seed uint64, sink func(*packet)) *shaper {
	s := &shaper{
		dyn:     dyn,
		sink:    sink,
		maxHeld: defaultMaxHeld,
		rng:     rand.New(rand.NewPCG(seed, seed*0x2545f4914f6cdd1d+1)),
		wake:    make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	s.wg.Add(1)
	go s.run()
	return s
}

// setDirection changes the settings used for packets arriving from now on.
func (s *shaper) setDirection(d Direction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dir = d
	s.limBytes = d.queueLimit()
	if d.Bursty == nil {
		s.geBad = false
	}
}

// submit takes ownership of p, which arrived now, and schedules it or
// drops it.
func (s *shaper) submit(p *packet) { s.submitAt(p, time.Now()) }

// submitAt is submit for a packet that reached the link at now (which may
// be a little in the past when the reader was descheduled).
func (s *shaper) submitAt(p *packet, now time.Time) {
	size := int64(len(p.data))
	if s.dyn.isDown(now) {
		s.dropDown.Add(1)
		p.free()
		return
	}
	s.mu.Lock()
	d := s.dir
	if s.stopped || s.held+size > s.maxHeld {
		s.mu.Unlock()
		s.dropQueue.Add(1)
		p.free()
		return
	}
	depart := now
	if d.RateBps > 0 {
		start := now
		if s.lastDepart.After(now) {
			start = s.lastDepart
		}
		backlogBytes := int64(start.Sub(now).Seconds() * float64(d.RateBps) / 8)
		if s.limBytes > 0 && backlogBytes+size > s.limBytes {
			s.mu.Unlock()
			s.dropQueue.Add(1)
			p.free()
			return
		}
		depart = start.Add(time.Duration(float64(size*8) / float64(d.RateBps) * float64(time.Second)))
		s.lastDepart = depart
	}
	// Loss happens on the wire, after the packet used its serialisation time.
	delay, spike, burst, ho := s.dyn.handover(now)
	if !ho {
		delay = d.Delay
	}
	if s.lost(d, burst) {
		s.mu.Unlock()
		s.dropLoss.Add(1)
		p.free()
		return
	}
	due := depart.Add(delay + spike)
	if d.Jitter > 0 {
		due = due.Add(time.Duration(s.rng.Int64N(int64(d.Jitter) + 1)))
	}
	if !d.Reorder && due.Before(s.lastDue) {
		due = s.lastDue
	}
	if due.After(s.lastDue) {
		s.lastDue = due
	}
	p.due = due
	s.seq++
	p.seq = s.seq
	heap.Push(&s.q, p)
	s.held += size
	head := s.q[0] == p
	s.mu.Unlock()
	if head {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// lost draws the loss decision for one packet. Called with s.mu held.
func (s *shaper) lost(d Direction, burst float64) bool {
	lost := false
	if d.LossRate > 0 && s.rng.Float64() < d.LossRate {
		lost = true
	}
	if g := d.Bursty; g != nil {
		if s.geBad {
			if s.rng.Float64() < g.R {
				s.geBad = false
			}
		} else if s.rng.Float64() < g.P {
			s.geBad = true
		}
		pl := g.LossGood
		if s.geBad {
			pl = g.LossBad
		}
		if s.rng.Float64() < pl {
			lost = true
		}
	}
	if burst > 0 && s.rng.Float64() < burst {
		lost = true
	}
	return lost
}

// run is the scheduler: it sleeps until the earliest due packet and
// releases every packet due by then.
func (s *shaper) run() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch []*packet
	for {
		now := time.Now()
		limit := now.Add(releaseSlack)
		s.mu.Lock()
		for len(s.q) > 0 && !s.q[0].due.After(limit) {
			p := heap.Pop(&s.q).(*packet)
			s.held -= int64(len(p.data))
			batch = append(batch, p)
		}
		next := time.Duration(-1)
		if len(s.q) > 0 {
			next = s.q[0].due.Sub(now)
		}
		s.mu.Unlock()
		if len(batch) > 0 {
			down := s.dyn.isDown(now)
			for i, p := range batch {
				if down {
					s.dropDown.Add(1)
					p.free()
				} else {
					s.packets.Add(1)
					s.bytes.Add(uint64(len(p.data)))
					s.sink(p)
				}
				batch[i] = nil
			}
			batch = batch[:0]
		}
		if next >= 0 {
			timer.Reset(max(next-releaseSlack, 0))
		}
		select {
		case <-s.done:
			s.drain()
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// drain frees every held packet after the scheduler stopped.
func (s *shaper) drain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.q {
		p.free()
	}
	s.q, s.held = nil, 0
}

// close stops the scheduler and waits for it. Packets still held are
// dropped.
func (s *shaper) close() {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return
	}
	s.stopped = true
	s.mu.Unlock()
	close(s.done)
	s.wg.Wait()
}

func (s *shaper) stats() DirStats {
	s.mu.Lock()
	qd := time.Until(s.lastDepart)
	held := len(s.q)
	s.mu.Unlock()
	return DirStats{
		Packets:       s.packets.Load(),
		Bytes:         s.bytes.Load(),
		DroppedQueue:  s.dropQueue.Load(),
		DroppedLoss:   s.dropLoss.Load(),
		DroppedOutage: s.dropDown.Load(),
		QueueDelay:    max(qd, 0),
		Held:          held,
	}
}
