package sockbuf

import "net"

// SetReadBuffer sets the receive buffer of pc when pc has one (a
// *net.UDPConn, or a wrapper that passes the call on); on any other conn
// it does nothing and returns nil.
func SetReadBuffer(pc net.PacketConn, n int) error {
	if s, ok := pc.(interface{ SetReadBuffer(int) error }); ok {
		return s.SetReadBuffer(n)
	}
	return nil
}

// SetWriteBuffer is SetReadBuffer for the send buffer.
func SetWriteBuffer(pc net.PacketConn, n int) error {
	if s, ok := pc.(interface{ SetWriteBuffer(int) error }); ok {
		return s.SetWriteBuffer(n)
	}
	return nil
}
