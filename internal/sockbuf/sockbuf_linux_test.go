package sockbuf

import (
	"syscall"
	"testing"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestSizeReachesTheKernel: after SetReadBuffer the socket's SO_RCVBUF
// is at least the size asked for (Linux doubles it for its own
// bookkeeping).
func TestSizeReachesTheKernel(t *testing.T) {
	udp := testutil.UDPSocket(t)
	const want = 64 << 10
	if err := SetReadBuffer(udp, want); err != nil {
		t.Fatal(err)
	}
	rc, err := udp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := rc.Control(func(fd uintptr) { got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) }); err != nil || serr != nil {
		t.Fatalf("SO_RCVBUF: %v, %v", err, serr)
	}
	if got < want {
		t.Errorf("SO_RCVBUF = %d after SetReadBuffer(%d); the size did not reach the socket", got, want)
	}
}
