package lane

import (
	"net"

	"golang.org/x/sys/unix"
)

// raiseBuffers sets SO_RCVBUF and SO_SNDBUF to want, or where the kernel's
// limits (net.core.rmem_max, wmem_max) allow less, the *FORCE variants
// (CAP_NET_ADMIN), and returns what the socket has then. Linux reports
// twice the size asked for (its bookkeeping overhead) and so does this.
func raiseBuffers(u *net.UDPConn, want int) (rcv, snd int, err error) {
	rc, err := u.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var serr error
	cerr := rc.Control(func(fd uintptr) {
		rcv, serr = raise(int(fd), unix.SO_RCVBUF, unix.SO_RCVBUFFORCE, want)
		if serr != nil {
			return
		}
		snd, serr = raise(int(fd), unix.SO_SNDBUF, unix.SO_SNDBUFFORCE, want)
	})
	if cerr != nil {
		return 0, 0, cerr
	}
	return rcv, snd, serr
}

// raise sets one buffer option (best effort) and returns its size then.
func raise(fd, opt, force, want int) (int, error) {
	if n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt); err == nil && n >= want {
		return n, nil
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, want) // capped by the limit; checked below
	if n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt); err == nil && n >= want {
		return n, nil
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, want) // needs CAP_NET_ADMIN; checked below
	return unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt)
}
