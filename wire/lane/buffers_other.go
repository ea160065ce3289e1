//go:build !linux

package lane

import "net"

// raiseBuffers asks for want-byte buffers; this platform does not say
// what it granted.
func raiseBuffers(u *net.UDPConn, want int) (rcv, snd int, err error) {
	_ = u.SetReadBuffer(want)  // best effort: unknown result
	_ = u.SetWriteBuffer(want) // as above
	return 0, 0, nil
}
