package lane

import "net"

// WrapConn returns the socket a quic.Transport should use for pc.
func WrapConn(pc net.PacketConn) net.PacketConn { return pc }
