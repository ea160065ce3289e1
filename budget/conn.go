package budget

import (
	"net"

	"github.com/edge-sync/edge-sync/internal/sockbuf"
)

// Conn is a net.PacketConn whose every datagram sent is counted by a
// budget: QUIC's packets (handshakes, streams, acknowledgements,
// retransmissions), the data lane's and the link monitor's probes all
// leave through it. It counts UDP payload bytes, not the IP and UDP
// headers below them (docs/budget.md#what-is-counted).
type Conn struct {
	net.PacketConn
	b *Budget
}

// Wrap returns pc counting what it sends into b.
func Wrap(pc net.PacketConn, b *Budget) *Conn { return &Conn{PacketConn: pc, b: b} }

// WriteTo sends p to addr and counts what was sent.
func (c *Conn) WriteTo(p []byte, addr net.Addr) (int, error) {
	c.b.Reserve(len(p))
	n, err := c.PacketConn.WriteTo(p, addr)
	c.b.Sent(len(p), n)
	return n, err
}

// SetReadBuffer passes the call to the socket below when it has one, as
// quic-go asks for a larger buffer.
func (c *Conn) SetReadBuffer(n int) error { return sockbuf.SetReadBuffer(c.PacketConn, n) }

// SetWriteBuffer passes the call to the socket below when it has one.
func (c *Conn) SetWriteBuffer(n int) error { return sockbuf.SetWriteBuffer(c.PacketConn, n) }
