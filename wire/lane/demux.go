package lane

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"
)

// Handler receives one non-QUIC packet. p is valid only during the call;
// the handler must not block (it runs on the demux's only reader).
type Handler func(p []byte, from net.Addr)

// Demux is the single reader of a quic.Transport's non-QUIC packets
// (ReadNonQUICPacket allows one consumer). It hands lane packets
// (leading byte 0x20-0x2f) to the session named by their tag, and other
// leading bytes 0x00-0x3f to handlers registered with Handle (the wire
// package's probes use 0x00-0x1f).
type Demux struct {
	tr       *quic.Transport
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.RWMutex
	handlers [0x40]Handler
	sessions map[[tagLen]byte]*Session
	closed   bool

	unknown  atomic.Int64 // lane packets with no session
	unrouted atomic.Int64 // other packets with no handler

	// routeMu makes route's callers (the reader below, and the reading
	// goroutine of quic-go when tr.Conn is a *Conn) take turns: sessions
	// and handlers see one packet at a time. Close takes it to wait for a
	// packet being routed.
	routeMu    sync.Mutex
	routeEnded bool  // Close ran: route drops what the socket's reader still hands it
	conn       *Conn // tr.Conn, when it is a *Conn routing to this demux
}

// NewDemux starts reading tr's non-QUIC packets. Close stops it. When
// tr.Conn is a *Conn (NewConn), its packets come straight from the
// socket's reads instead of through quic-go's queue of 32 packets, which
// drops the rest of a burst (see Conn).
func NewDemux(tr *quic.Transport) *Demux {
	ctx, cancel := context.WithCancel(context.Background())
	d := &Demux{tr: tr, cancel: cancel, done: make(chan struct{}), sessions: map[[tagLen]byte]*Session{}}
	if c, ok := tr.Conn.(*Conn); ok && c.demux.CompareAndSwap(nil, d) {
		d.conn = c
	}
	go d.read(ctx)
	return d
}

// Handle routes packets whose first byte is in [first, last] to h. The
// range must be within 0x00-0x3f and outside the lane's 0x20-0x2f; a nil h
// removes the route.
func (d *Demux) Handle(first, last byte, h Handler) error {
	if first > last || last >= 0x40 || (last >= KindFirst && first <= KindLast) {
		return fmt.Errorf("demux handle %#x-%#x: %w", first, last, ErrKindRange)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for b := int(first); b <= int(last); b++ {
		d.handlers[b] = h
	}
	return nil
}

// Stats returns counts of packets nobody took: lane packets with an
// unknown session tag, and other packets without a handler.
func (d *Demux) Stats() (unknownSession, unrouted int64) {
	return d.unknown.Load(), d.unrouted.Load()
}

// Close stops the reader and waits for it. Sessions using the demux stop
// receiving; close them too.
func (d *Demux) Close() error {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	if d.conn != nil {
		d.conn.demux.CompareAndSwap(d, nil)
	}
	d.cancel()
	<-d.done
	d.routeMu.Lock() // waits for a packet being routed by the socket's reader
	d.routeEnded = true
	d.routeMu.Unlock()
	return nil
}

func (d *Demux) register(tag [tagLen]byte, s *Session) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if _, ok := d.sessions[tag]; ok {
		return ErrTagInUse
	}
	d.sessions[tag] = s
	return nil
}

func (d *Demux) unregister(tag [tagLen]byte, s *Session) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sessions[tag] == s {
		delete(d.sessions, tag)
	}
}

func (d *Demux) read(ctx context.Context) {
	defer close(d.done)
	buf := make([]byte, MaxPacketSize+1)
	for {
		n, from, err := d.tr.ReadNonQUICPacket(ctx, buf)
		if err != nil {
			return // ctx ended or the transport closed
		}
		d.route(buf[:n], from)
	}
}

// route hands one non-QUIC packet to its session or handler. p is valid
// only during the call.
func (d *Demux) route(p []byte, from net.Addr) {
	d.routeMu.Lock()
	defer d.routeMu.Unlock()
	if d.routeEnded {
		return
	}
	if len(p) == 0 || len(p) > MaxPacketSize {
		d.unrouted.Add(1)
		return
	}
	if p[0] >= KindFirst && p[0] <= KindLast {
		tag, ok := packetTag(p)
		d.mu.RLock()
		s := d.sessions[tag]
		d.mu.RUnlock()
		if !ok || s == nil {
			d.unknown.Add(1)
			return
		}
		s.handlePacket(p)
		return
	}
	d.mu.RLock()
	h := d.handlers[p[0]&0x3f]
	d.mu.RUnlock()
	if h == nil {
		d.unrouted.Add(1)
		return
	}
	h(p, from)
}
