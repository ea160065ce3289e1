package linksim

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edge-sync/edge-sync/internal/sockbuf"
)

// Conn is a net.PacketConn that shapes the traffic of the PacketConn it
// wraps: writes go through Up, reads through Down. It can be used as
// quic.Transport{Conn: c}; it hides the wrapped connection's OOB and
// syscall methods, so quic-go falls back to plain ReadFrom/WriteTo.
type Conn struct {
	pc       net.PacketConn
	link     *link
	recv     chan *packet
	overflow atomic.Uint64
	done     chan struct{}
	failed   chan struct{} // closed when the wrapped conn's read fails
	readErr  error         // set before failed is closed
	once     sync.Once
	wg       sync.WaitGroup

	rdMu       sync.Mutex
	rdDeadline time.Time
	rdChanged  chan struct{}
}

var _ net.PacketConn = (*Conn)(nil)

// recvQueue is how many shaped packets wait for ReadFrom before new ones
// are dropped, like a socket receive buffer.
const recvQueue = 4096

// Option changes how Wrap builds a Conn.
type Option func(*wrapOptions)

type wrapOptions struct{ seed uint64 }

// WithSeed makes loss and jitter reproducible.
func WithSeed(seed uint64) Option { return func(o *wrapOptions) { o.seed = seed } }

// Wrap returns a Conn that shapes pc's traffic with p. The Conn owns pc
// and closes it on Close.
func Wrap(pc net.PacketConn, p Profile, opts ...Option) (*Conn, error) {
	var o wrapOptions
	for _, opt := range opts {
		opt(&o)
	}
	c := &Conn{
		pc:        pc,
		recv:      make(chan *packet, recvQueue),
		done:      make(chan struct{}),
		failed:    make(chan struct{}),
		rdChanged: make(chan struct{}),
	}
	var err error
	c.link, err = newLink(p, o.seed, c.sendUp, c.sendDown)
	if err != nil {
		return nil, err
	}
	c.wg.Add(1)
	go c.readLoop()
	return c, nil
}

func (c *Conn) readLoop() {
	defer c.wg.Done()
	buf := make([]byte, 65536)
	errs := 0 // consecutive errors: a conn that only fails is treated as closed
	for {
		n, addr, err := c.pc.ReadFrom(buf)
		if err != nil {
			errs++
			select {
			case <-c.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if errors.Is(err, net.ErrClosed) || errs >= 1000 {
				c.readErr = err
				close(c.failed)
				return
			}
			continue // transient, e.g. ICMP port unreachable
		}
		errs = 0
		p := newPacket(buf[:n])
		p.to = addr
		c.link.down.submit(p)
	}
}

func (c *Conn) sendUp(p *packet) {
	_, _ = c.pc.WriteTo(p.data, p.to) // a failed write loses the packet, as a link would
	p.free()
}

func (c *Conn) sendDown(p *packet) {
	select {
	case c.recv <- p:
	default:
		c.overflow.Add(1)
		p.free()
	}
}

// ReadFrom returns the next packet that has passed the Down direction.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		c.rdMu.Lock()
		dl, changed := c.rdDeadline, c.rdChanged
		c.rdMu.Unlock()
		var expired <-chan time.Time
		var timer *time.Timer
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return 0, nil, os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(d)
			expired = timer.C
		}
		select {
		case p := <-c.recv:
			if timer != nil {
				timer.Stop()
			}
			n := copy(b, p.data)
			addr := p.to
			p.free()
			return n, addr, nil
		case <-c.done:
			return 0, nil, net.ErrClosed
		case <-c.failed:
			return 0, nil, c.readErr
		case <-expired:
			return 0, nil, os.ErrDeadlineExceeded
		case <-changed:
			if timer != nil {
				timer.Stop()
			}
		}
	}
}

// WriteTo queues b for the Up direction; it never blocks.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	p := newPacket(b)
	p.to = addr
	c.link.up.submit(p)
	return len(b), nil
}

// Close stops the shaper and closes the wrapped connection.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		err = c.pc.Close()
		c.wg.Wait()
		c.link.close()
		for {
			select {
			case p := <-c.recv:
				p.free()
			default:
				return
			}
		}
	})
	return err
}

// LocalAddr returns the wrapped connection's address.
func (c *Conn) LocalAddr() net.Addr { return c.pc.LocalAddr() }

// SetDeadline sets the read deadline; writes never block.
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline makes ReadFrom fail with os.ErrDeadlineExceeded after t.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.rdMu.Lock()
	defer c.rdMu.Unlock()
	c.rdDeadline = t
	close(c.rdChanged)
	c.rdChanged = make(chan struct{})
	return nil
}

// SetWriteDeadline does nothing: writes never block.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer sets the wrapped connection's buffer when it has one; it
// exists so quic-go does not warn about buffer sizes.
func (c *Conn) SetReadBuffer(n int) error { return sockbuf.SetReadBuffer(c.pc, n) }

// SetWriteBuffer sets the wrapped connection's buffer when it has one.
func (c *Conn) SetWriteBuffer(n int) error { return sockbuf.SetWriteBuffer(c.pc, n) }

// SetProfile applies p to packets arriving from now on.
func (c *Conn) SetProfile(p Profile) error { return c.link.setProfile(p) }

// Profile returns the profile in force.
func (c *Conn) Profile() Profile { return c.link.currentProfile() }

// RunSchedule applies each step in turn and returns when the last step's
// duration has passed (its profile stays in force) or ctx ends.
func (c *Conn) RunSchedule(ctx context.Context, steps []Step) error {
	return c.link.runSchedule(ctx, steps)
}

// Stats returns a snapshot of the counters. Packets dropped because
// ReadFrom was not called fast enough count as Down.DroppedQueue.
func (c *Conn) Stats() Stats {
	s := c.link.stats()
	s.Down.DroppedQueue += c.overflow.Load()
	return s
}
