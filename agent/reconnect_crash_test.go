package agent

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// crashableConn is a core's UDP socket that a crash silences: once cut,
// what the core writes is lost, as the CONNECTION_CLOSE of a core killed
// with SIGKILL never leaves.
type crashableConn struct {
	net.PacketConn
	sock *net.UDPConn
	cut  atomic.Bool
}

func (c *crashableConn) SetReadBuffer(n int) error  { return c.sock.SetReadBuffer(n) }
func (c *crashableConn) SetWriteBuffer(n int) error { return c.sock.SetWriteBuffer(n) }

func (c *crashableConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

// TestCoreCrashesReconnectAtOnce crashes the core (its close never sent)
// soon after each of the agent's connections and starts it again on the
// same socket, as systemd does with an activated socket: the new core
// answers the old connection's packets with a stateless reset, and the
// agent connects to it at once, each time. The dial backoff for short
// connections (connerror.go) is for a core that closes them itself; it
// made the agent wait 0.5 s, 1 s, 2 s, 4 s, 8 s after a restarting
// core's resets (TestCoreRestartReconnect: 108 ms became 0.6 s).
func TestCoreCrashesReconnectAtOnce(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	sock := testutil.UDPSocket(t)
	conn := &crashableConn{PacketConn: sock, sock: sock}
	c := coretest.StartConn(t, p, conn, nil)
	a := startAgent(t, p, coretest.AgentConfig(t, p, sock.LocalAddr().String()), Options{})
	const restarts = 6
	for i := range restarts + 1 {
		start := time.Now()
		enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("alarms/%d", i), Kind: edgesync.EventOp,
			Priority: edgesync.Critical, Payload: strings.NewReader(fmt.Sprintf("alarm %d", i))})
		// 4 s is 40 times what a reconnect takes on loopback, and less than
		// the backoff's fourth wait (4 s, -20 % jitter: 3.2 s) plus the rest.
		testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("the op put after restart %d at the core", i), func() bool { return outboxEmpty(a) })
		if d := time.Since(start); i > 0 && d > 4*time.Second {
			t.Errorf("restart %d of %d: the op reached the restarted core %v after it was ready; the agent waited a backoff before connecting to it",
				i, restarts, d.Round(time.Millisecond))
		}
		if i == restarts {
			break
		}
		conn.cut.Store(true) // the crash: nothing more leaves the core
		c.Stop()
		conn = &crashableConn{PacketConn: sock, sock: sock}
		c = coretest.StartConn(t, p, conn, nil)
	}
	if n := a.Stats()[0].Connects; n < restarts+1 {
		t.Errorf("%d connections for %d cores", n, restarts+1)
	}
}
