package linksim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	// Listen is the UDP address clients send to; default "127.0.0.1:0".
	Listen string
	// Target is the UDP address packets are forwarded to; required.
	Target string
	// Profile is the link applied between clients and target.
	Profile Profile
	// IdleTimeout removes a client mapping after this long without
	// traffic either way; default 2 minutes.
	IdleTimeout time.Duration
	// MaxClients caps the number of client mappings; packets from further
	// clients are dropped (counted as Up.DroppedQueue). Default 1024.
	MaxClients int
	// Seed makes loss and jitter reproducible; 0 picks a random seed.
	Seed uint64
}

// Relay is a UDP relay that shapes traffic between its clients and one
// target. All clients share one link: Up carries client→target, Down
// target→client. Each client address gets its own upstream socket, so the
// target sees one peer per client.
type Relay struct {
	cfg    RelayConfig
	ln     *net.UDPConn
	target *net.UDPAddr
	link   *link
	done   chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	clients map[netip.AddrPort]*mapping
	closed  bool
}

// mapping is one client's path through the relay.
type mapping struct {
	client   netip.AddrPort
	up       *net.UDPConn // connected to the target
	lastSeen atomic.Int64 // unix nanoseconds
}

func (m *mapping) touch() { m.lastSeen.Store(time.Now().UnixNano()) }

// socketBuffer is the kernel buffer size asked for on relay sockets, so
// bursts at 100 Mbit/s are not dropped before the shaper sees them.
const socketBuffer = 4 << 20

// tuneSocket asks for large kernel buffers and arrival stamps on a relay
// socket. Both are best effort: the kernel may cap the buffers (bursts are
// then dropped as a shallower queue would drop them), and enableRxTime
// falls back to read times.
func tuneSocket(c *net.UDPConn) {
	_ = c.SetReadBuffer(socketBuffer)
	_ = c.SetWriteBuffer(socketBuffer)
	enableRxTime(c)
}

// NewRelay listens on cfg.Listen and starts forwarding to cfg.Target.
func NewRelay(cfg RelayConfig) (*Relay, error) {
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.Target == "" {
		return nil, errors.New("new relay: no target address")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = 1024
	}
	target, err := net.ResolveUDPAddr("udp", cfg.Target)
	if err != nil {
		return nil, fmt.Errorf("new relay: target: %w", err)
	}
	laddr, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("new relay: listen: %w", err)
	}
	r := &Relay{cfg: cfg, target: target, done: make(chan struct{}), clients: map[netip.AddrPort]*mapping{}}
	r.link, err = newLink(cfg.Profile, cfg.Seed, r.sendUp, r.sendDown)
	if err != nil {
		return nil, fmt.Errorf("new relay: %w", err)
	}
	r.ln, err = net.ListenUDP("udp", laddr)
	if err != nil {
		r.link.close()
		return nil, fmt.Errorf("new relay: %w", err)
	}
	tuneSocket(r.ln)
	r.wg.Add(2)
	go r.readClients()
	go r.expire()
	return r, nil
}

// Addr returns the address clients send to.
func (r *Relay) Addr() net.Addr { return r.ln.LocalAddr() }

// SetProfile applies p to packets arriving from now on.
func (r *Relay) SetProfile(p Profile) error { return r.link.setProfile(p) }

// Profile returns the profile in force.
func (r *Relay) Profile() Profile { return r.link.currentProfile() }

// RunSchedule applies each step in turn and returns when the last step's
// duration has passed (its profile stays in force) or ctx ends.
func (r *Relay) RunSchedule(ctx context.Context, steps []Step) error {
	return r.link.runSchedule(ctx, steps)
}

// Stats returns a snapshot of the counters.
func (r *Relay) Stats() Stats { return r.link.stats() }

// Clients returns the number of live client mappings.
func (r *Relay) Clients() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.clients)
}

// Close stops forwarding, closes every socket and waits for every
// goroutine. Packets still in the link are dropped.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.done)
	err := r.ln.Close()
	for k, m := range r.clients {
		m.up.Close()
		delete(r.clients, k)
	}
	r.mu.Unlock()
	r.wg.Wait()
	r.link.close()
	return err
}

func (r *Relay) isClosed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// readClients reads datagrams from clients and feeds the Up shaper.
func (r *Relay) readClients() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	oob := make([]byte, 128)
	for {
		n, oobn, _, from, err := r.ln.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if r.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP errors surfacing on the socket
		}
		m := r.mappingFor(from)
		if m == nil {
			r.link.up.dropQueue.Add(1)
			continue
		}
		m.touch()
		p := newPacket(buf[:n])
		p.via = m
		r.link.up.submitAt(p, rxTime(oob[:oobn], time.Now()))
	}
}

// mappingFor returns the client's mapping, creating it and its upstream
// reader if needed; nil when the relay is full or closed.
func (r *Relay) mappingFor(client netip.AddrPort) *mapping {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m, ok := r.clients[client]; ok {
		return m
	}
	if r.closed || len(r.clients) >= r.cfg.MaxClients {
		return nil
	}
	up, err := net.DialUDP("udp", nil, r.target)
	if err != nil {
		return nil
	}
	tuneSocket(up)
	m := &mapping{client: client, up: up}
	m.touch()
	r.clients[client] = m
	r.wg.Add(1)
	go r.readTarget(m)
	return m
}

// readTarget reads the target's replies for one client and feeds the Down
// shaper.
func (r *Relay) readTarget(m *mapping) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	oob := make([]byte, 128)
	for {
		n, oobn, _, _, err := m.up.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || r.isClosed() {
				return
			}
			continue // ECONNREFUSED while the target is not listening
		}
		m.touch()
		p := newPacket(buf[:n])
		p.via = m
		r.link.down.submitAt(p, rxTime(oob[:oobn], time.Now()))
	}
}

func (r *Relay) sendUp(p *packet) {
	m := p.via.(*mapping)
	_, _ = m.up.Write(p.data) // a closed mapping or full buffer loses the packet, as a link would
	p.free()
}

func (r *Relay) sendDown(p *packet) {
	m := p.via.(*mapping)
	_, _ = r.ln.WriteToUDPAddrPort(p.data, m.client) // as sendUp: a failed write is a lost packet
	p.free()
}

// expire removes idle mappings.
func (r *Relay) expire() {
	defer r.wg.Done()
	every := max(r.cfg.IdleTimeout/4, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case now := <-t.C:
			cut := now.Add(-r.cfg.IdleTimeout).UnixNano()
			r.mu.Lock()
			for k, m := range r.clients {
				if m.lastSeen.Load() < cut {
					m.up.Close()
					delete(r.clients, k)
				}
			}
			r.mu.Unlock()
		}
	}
}
