package sockbuf

import (
	"errors"
	"net"
	"testing"

	"go.uber.org/goleak"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// hidden is a wrapper that hides the socket's buffer methods.
type hidden struct{ net.PacketConn }

// TestPassesToTheSocket: a UDP socket takes both sizes; a closed one's
// error comes back, so the call did reach it; a conn without the
// methods is left alone.
func TestPassesToTheSocket(t *testing.T) {
	udp := testutil.UDPSocket(t)
	if err := SetReadBuffer(udp, 64<<10); err != nil {
		t.Fatalf("SetReadBuffer on a UDP socket: %v", err)
	}
	if err := SetWriteBuffer(udp, 64<<10); err != nil {
		t.Fatalf("SetWriteBuffer on a UDP socket: %v", err)
	}
	if err := SetReadBuffer(hidden{udp}, 64<<10); err != nil {
		t.Errorf("SetReadBuffer on a conn without the method: %v, want nil", err)
	}
	if err := SetWriteBuffer(hidden{udp}, 64<<10); err != nil {
		t.Errorf("SetWriteBuffer on a conn without the method: %v, want nil", err)
	}
	udp.Close()
	if err := SetReadBuffer(udp, 64<<10); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetReadBuffer on a closed socket: %v, want net.ErrClosed", err)
	}
	if err := SetWriteBuffer(udp, 64<<10); !errors.Is(err, net.ErrClosed) {
		t.Errorf("SetWriteBuffer on a closed socket: %v, want net.ErrClosed", err)
	}
}
