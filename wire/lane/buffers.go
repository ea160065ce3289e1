package lane

import (
	"fmt"
	"net"
)

// WantSocketBuffer is the receive and send buffer a lane's UDP socket
// asks the kernel for: quic-go's own wish (7 MiB). The receive buffer is
// the only queue in front of a busy reader (see Conn): at 100 Mbit/s it
// holds about half a second of packets.
const WantSocketBuffer = 7 << 20

// RaiseBuffers asks for WantSocketBuffer-byte receive and send buffers on
// pc, beyond the kernel's limits where the process may (Linux:
// SO_RCVBUFFORCE with CAP_NET_ADMIN), and returns the sizes granted. err
// says what is short and what an operator sets to fix it; the socket
// works either way, with more packets lost to bursts. Sizes are 0 where
// the platform or pc does not tell.
func RaiseBuffers(pc net.PacketConn) (rcv, snd int, err error) {
	u, ok := pc.(*net.UDPConn)
	if !ok {
		return 0, 0, nil // a wrapper (the agent's budget meter): not ours to size
	}
	rcv, snd, err = raiseBuffers(u, WantSocketBuffer)
	if err != nil {
		return rcv, snd, fmt.Errorf("UDP socket buffers: %w", err)
	}
	if (rcv > 0 && rcv < WantSocketBuffer) || (snd > 0 && snd < WantSocketBuffer) {
		return rcv, snd, fmt.Errorf("UDP socket buffers are %d KiB (receive) and %d KiB (send), want %d KiB: bursts beyond them are lost and sent again; "+
			"raise the kernel's limits (Linux: sysctl -w net.core.rmem_max=%d net.core.wmem_max=%d) or give the process CAP_NET_ADMIN",
			rcv>>10, snd>>10, WantSocketBuffer>>10, WantSocketBuffer, WantSocketBuffer)
	}
	return rcv, snd, nil
}
