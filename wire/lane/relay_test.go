package lane

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// shape is one direction of a test link: rate (UDP payload bit/s, 0 is
// unlimited), one-way delay, random loss and a drop-tail queue limit in
// time at the rate (0: 100 ms, as linksim's default).
type shape struct {
	rateBps int64
	delay   time.Duration
	loss    float64
	queue   time.Duration
}

// testLink is a symmetric link description for tests and benchmarks.
type testLink struct {
	name     string
	rateBps  int64
	rtt      time.Duration
	loss     float64
	reverseR int64 // reverse rate; 0 = same
}

func (l testLink) shapes() (up, down shape) {
	rr := l.reverseR
	if rr == 0 {
		rr = l.rateBps
	}
	up = shape{rateBps: l.rateBps, delay: l.rtt / 2, loss: l.loss}
	down = shape{rateBps: rr, delay: l.rtt / 2, loss: l.loss}
	return up, down
}

// relay is a private stand-in for linksim.Relay (not committed when this
// was written): one client, rate via departure-time serialisation, delay,
// random loss, drop-tail queue. tap, when set, sees every client→target
// packet before shaping.
type relay struct {
	ln     *net.UDPConn
	up     *net.UDPConn
	client atomic.Pointer[netip.AddrPort]
	upQ    *shaper
	downQ  *shaper
	tap    atomic.Pointer[func([]byte)]
	wg     sync.WaitGroup
	closed atomic.Bool
}

type shaped struct {
	b  []byte
	at time.Time
}

type shaper struct {
	sh      shape
	rng     *rand.Rand
	mu      sync.Mutex
	depart  time.Time
	ch      chan shaped
	send    func([]byte)
	dropped atomic.Int64
}

func newShaper(sh shape, seed uint64, send func([]byte)) *shaper {
	if sh.queue == 0 {
		sh.queue = 100 * time.Millisecond
	}
	return &shaper{sh: sh, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), ch: make(chan shaped, 1<<16), send: send}
}

func (s *shaper) submit(b []byte) {
	now := time.Now()
	s.mu.Lock()
	start := now
	if s.depart.After(now) {
		start = s.depart
	}
	if start.Sub(now) > s.sh.queue {
		s.mu.Unlock()
		s.dropped.Add(1)
		return
	}
	end := start
	if s.sh.rateBps > 0 {
		end = start.Add(time.Duration(float64(len(b)) * 8 / float64(s.sh.rateBps) * float64(time.Second)))
	}
	s.depart = end
	lost := s.sh.loss > 0 && s.rng.Float64() < s.sh.loss
	s.mu.Unlock()
	if lost {
		s.dropped.Add(1)
		return
	}
	select {
	case s.ch <- shaped{b: append([]byte(nil), b...), at: end.Add(s.sh.delay)}:
	default:
		s.dropped.Add(1)
	}
}

func (s *shaper) run(done <-chan struct{}) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case p := <-s.ch:
			if d := time.Until(p.at); d > 0 {
				t.Reset(d)
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
			s.send(p.b)
		}
	}
}

func newRelay(target net.Addr, up, down shape, seed uint64) (*relay, error) {
	ln, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	upc, err := net.DialUDP("udp", nil, target.(*net.UDPAddr))
	if err != nil {
		ln.Close()
		return nil, err
	}
	for _, c := range []*net.UDPConn{ln, upc} {
		_ = c.SetReadBuffer(8 << 20)
		_ = c.SetWriteBuffer(8 << 20)
	}
	r := &relay{ln: ln, up: upc}
	r.upQ = newShaper(up, seed, func(b []byte) { _, _ = r.up.Write(b) })
	r.downQ = newShaper(down, seed+1, func(b []byte) {
		if c := r.client.Load(); c != nil {
			_, _ = r.ln.WriteToUDPAddrPort(b, *c)
		}
	})
	done := make(chan struct{})
	r.wg.Add(4)
	go func() { defer r.wg.Done(); r.upQ.run(done) }()
	go func() { defer r.wg.Done(); r.downQ.run(done) }()
	go func() {
		defer r.wg.Done()
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := ln.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if r.client.Load() == nil {
				r.client.Store(&from)
			}
			if f := r.tap.Load(); f != nil {
				(*f)(buf[:n])
			}
			r.upQ.submit(buf[:n])
		}
	}()
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, err := upc.Read(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			r.downQ.submit(buf[:n])
		}
	}()
	return r, nil
}

func (r *relay) Addr() net.Addr { return r.ln.LocalAddr() }

func (r *relay) Close() {
	if r.closed.Swap(true) {
		return
	}
	r.ln.Close()
	r.up.Close()
	r.wg.Wait()
}
