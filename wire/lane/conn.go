package lane

import (
	"net"
	"sync/atomic"

	"golang.org/x/net/ipv4"
)

// Conn is a UDP socket for a quic.Transport that hands non-QUIC packets
// (first byte below 0x40: the lane's and the probes') to the transport's
// Demux as the socket's reader reads them, instead of letting quic-go
// queue them for Transport.ReadNonQUICPacket. quic-go keeps at most 32
// such packets and drops the rest: on a busy machine, where the demux's
// goroutine waits for a CPU while quic-go reads a backlog from the socket
// in one go, a 20 Mbit/s lane lost bursts of 10-40 packets that way, 1-3 %
// of what it sent on a link that dropped nothing (docs/lane.md, "The
// receiving socket"). With Conn the only queue is the kernel's socket
// buffer.
//
// Conn keeps quic-go's batched reads: it offers ReadBatch (quic-go uses a
// connection's own ReadBatch when it has one) and takes the non-QUIC
// packets out of each batch. Without a Demux (none made on the transport,
// or it closed) packets pass to quic-go unchanged.
type Conn struct {
	*net.UDPConn
	batch *ipv4.PacketConn
	demux atomic.Pointer[Demux]
}

// NewConn wraps c; pass the result as quic.Transport.Conn, then make the
// transport's Demux (NewDemux attaches it).
func NewConn(c *net.UDPConn) *Conn {
	return &Conn{UDPConn: c, batch: ipv4.NewPacketConn(c)}
}

// nonQUIC reports whether quic-go would hand p to ReadNonQUICPacket: the
// first two bits 0.
func nonQUIC(p []byte) bool { return len(p) > 0 && p[0]&0xc0 == 0 }

// ReadBatch reads a batch of packets (quic-go's batchConn), routes the
// non-QUIC ones to the Demux and returns the others, moved to the front of
// ms. It reads again when a batch held only non-QUIC packets, as quic-go
// takes a batch of none for an error.
func (c *Conn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	for {
		n, err := c.batch.ReadBatch(ms, flags)
		if err != nil || n == 0 {
			return n, err
		}
		d := c.demux.Load()
		if d == nil {
			return n, nil
		}
		kept := 0
		for i := range n {
			m := &ms[i]
			p := m.Buffers[0][:m.N]
			if nonQUIC(p) {
				d.route(p, m.Addr)
				continue
			}
			if kept != i {
				// quic-go ties each message to its own buffer: move the
				// bytes, not the buffers.
				k := &ms[kept]
				k.N = copy(k.Buffers[0], p)
				k.NN = copy(k.OOB, m.OOB[:m.NN])
				k.Addr, k.Flags = m.Addr, m.Flags
			}
			kept++
		}
		if kept > 0 {
			return kept, nil
		}
	}
}

// ReadFrom is ReadBatch for one packet, for quic-go's plain reader (where
// the platform has no batched reads).
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.UDPConn.ReadFrom(b)
		if err != nil || !nonQUIC(b[:n]) {
			return n, addr, err
		}
		d := c.demux.Load()
		if d == nil {
			return n, addr, nil
		}
		d.route(b[:n], addr)
	}
}

// WrapConn returns pc as a *Conn when it is a UDP socket, and pc itself
// otherwise (a wrapper such as the agent's budget meter: its non-QUIC
// packets go through quic-go's queue as before).
func WrapConn(pc net.PacketConn) net.PacketConn {
	if u, ok := pc.(*net.UDPConn); ok {
		return NewConn(u)
	}
	return pc
}
