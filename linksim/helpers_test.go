package linksim

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// base is the clock senders stamp into payloads; the receiver, in the
// same process, computes one-way delays against it.
var base = time.Now()

func stamp(b []byte, seq uint64) {
	binary.BigEndian.PutUint64(b[0:8], seq)
	binary.BigEndian.PutUint64(b[8:16], uint64(time.Since(base)))
}

// arrival is one datagram seen by a receiver.
type arrival struct {
	seq  uint64
	sent time.Duration // since base
	at   time.Duration // since base
	size int
}

func (a arrival) delay() time.Duration { return a.at - a.sent }

// receiver is a UDP socket on loopback that records what arrives, and
// optionally echoes it back.
type receiver struct {
	conn *net.UDPConn
	echo bool
	wg   sync.WaitGroup

	mu   sync.Mutex
	got  []arrival
	cond chan struct{} // closed and replaced on every arrival
}

func newReceiver(t *testing.T, echo bool) *receiver {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(socketBuffer)
	return startReceiver(t, c, echo)
}

func startReceiver(t *testing.T, c *net.UDPConn, echo bool) *receiver {
	r := &receiver{conn: c, echo: echo, cond: make(chan struct{})}
	r.wg.Add(1)
	go r.loop()
	t.Cleanup(r.close)
	return r
}

// collector records what comes back on a sender's socket.
type collector = receiver

func newCollector(t *testing.T, c *net.UDPConn) *collector { return startReceiver(t, c, false) }

func (r *receiver) addr() string { return r.conn.LocalAddr().String() }

func (r *receiver) loop() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		at := time.Since(base)
		if n >= 16 {
			a := arrival{
				seq:  binary.BigEndian.Uint64(buf[0:8]),
				sent: time.Duration(binary.BigEndian.Uint64(buf[8:16])),
				at:   at,
				size: n,
			}
			r.mu.Lock()
			r.got = append(r.got, a)
			close(r.cond)
			r.cond = make(chan struct{})
			r.mu.Unlock()
		}
		if r.echo {
			_, _ = r.conn.WriteToUDPAddrPort(buf[:n], from)
		}
	}
}

func (r *receiver) close() {
	r.conn.Close()
	r.wg.Wait()
}

func (r *receiver) arrivals() []arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]arrival(nil), r.got...)
}

// waitFor waits until ok(arrivals) holds or timeout passes. ok is checked
// on every arrival and every 20 ms, for conditions that also read counters.
func (r *receiver) waitFor(t *testing.T, timeout time.Duration, what string, ok func([]arrival) bool) []arrival {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		got := append([]arrival(nil), r.got...)
		ch := r.cond
		r.mu.Unlock()
		if ok(got) {
			return got
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s (have %d arrivals)", timeout, what, len(got))
		}
	}
}

// dial returns a UDP socket connected to addr.
func dial(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, ua)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetWriteBuffer(socketBuffer)
	t.Cleanup(func() { c.Close() })
	return c
}

// sendPaced sends size-byte stamped datagrams at rateBps (payload bits)
// for dur, and returns how many it sent. Sleeping here paces the load; it
// is not synchronisation.
func sendPaced(t *testing.T, c *net.UDPConn, size int, rateBps float64, dur time.Duration) uint64 {
	t.Helper()
	buf := make([]byte, size)
	start := time.Now()
	var seq uint64
	var sentBytes float64
	for {
		el := time.Since(start)
		if el >= dur {
			return seq
		}
		want := rateBps / 8 * el.Seconds()
		for sentBytes+float64(size) <= want {
			stamp(buf, seq)
			if _, err := c.Write(buf); err != nil {
				t.Fatalf("send: %v", err)
			}
			seq++
			sentBytes += float64(size)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// sendEvery sends n stamped datagrams, one every gap.
func sendEvery(t *testing.T, c *net.UDPConn, size, n int, gap time.Duration) {
	t.Helper()
	buf := make([]byte, size)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * gap)); d > 0 {
			time.Sleep(d)
		}
		stamp(buf, uint64(i))
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
}

func newTestRelay(t *testing.T, target string, p Profile) *Relay {
	t.Helper()
	r, err := NewRelay(RelayConfig{Target: target, Profile: p})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// fraction returns the share of xs for which ok holds.
func fraction[T any](xs []T, ok func(T) bool) float64 {
	if len(xs) == 0 {
		return 0
	}
	n := 0
	for _, x := range xs {
		if ok(x) {
			n++
		}
	}
	return float64(n) / float64(len(xs))
}
