package lane

import (
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/sys/unix"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestBurstBeyondQuicGoQueue: a burst of non-QUIC packets that arrives
// while the demux is busy must wait in the socket's buffer, not be dropped.
// quic-go queues 32 such packets for ReadNonQUICPacket and drops the rest;
// on a loaded machine the core lost 1-3 % of a clean 20 Mbit/s lane that
// way (docs/lane.md, "The receiving socket"). The handler here holds the
// first packet until the whole burst is sent and the socket's kernel
// queue is empty (quic-go's reader took every packet) or, when the
// handler holds that reader itself (lane.Conn), for half a second.
func TestBurstBeyondQuicGoQueue(t *testing.T) {
	const burst = 100 // well within a default socket buffer (212 KiB)
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := pc.SetReadBuffer(1 << 20); err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: WrapConn(pc)}
	defer tr.Close()
	d := NewDemux(tr)
	defer d.Close()
	sent, entered := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var got atomic.Int64
	if err := d.Handle(0x2e, 0x2e, func([]byte, net.Addr) {
		once.Do(func() {
			close(entered)
			select { // bounded: a broken test must not hang the reader
			case <-sent:
			case <-time.After(10 * time.Second):
			}
			testutil.Poll(500*time.Millisecond, func() bool { return queued(t, pc) == 0 })
		})
		got.Add(1)
	}); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, pc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The first packet reaches the handler and holds it.
	pkt := make([]byte, 200)
	pkt[0] = 0x2e
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the first packet at the handler", func() bool {
		select {
		case <-entered:
			return true
		default:
			return false
		}
	})
	for range burst - 1 {
		if _, err := c.Write(pkt); err != nil {
			t.Fatal(err)
		}
	}
	close(sent)
	if !testutil.Poll(5*time.Second, func() bool { return got.Load() == burst }) {
		t.Fatalf("the handler got %d of a burst of %d packets; the rest were dropped", got.Load(), burst)
	}
}

// queued returns the size of the next datagram waiting in pc's kernel
// receive queue, 0 when none.
func queued(t *testing.T, pc *net.UDPConn) int {
	rc, err := pc.SyscallConn()
	if err != nil {
		t.Error(err)
		return 0
	}
	var n int
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ierr != nil {
		t.Error(err, ierr)
		return 0
	}
	return n
}

// TestRaiseBuffers: the socket gets quic-go's 7 MiB buffers, or an error
// that tells the operator which limits to raise.
func TestRaiseBuffers(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	rcv, snd, err := RaiseBuffers(pc)
	switch {
	case err != nil && !strings.Contains(err.Error(), "net.core.rmem_max"):
		t.Fatalf("RaiseBuffers: %v; want an error naming net.core.rmem_max", err)
	case err != nil:
		t.Logf("no CAP_NET_ADMIN and low limits here: %v", err)
	case rcv < WantSocketBuffer || snd < WantSocketBuffer:
		t.Fatalf("RaiseBuffers = %d, %d without an error; want both ≥ %d", rcv, snd, WantSocketBuffer)
	}
	if rcv, snd, err := RaiseBuffers(wrapped{pc}); rcv != 0 || snd != 0 || err != nil {
		t.Fatalf("RaiseBuffers(a wrapper) = %d, %d, %v; want it left alone", rcv, snd, err)
	}
}

// wrapped hides a *net.UDPConn, as the agent's budget meter does.
type wrapped struct{ net.PacketConn }
