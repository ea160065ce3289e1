package linksim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// base is the origin of the wall-clock times senders stamp into payloads
// and the receiver reads from the kernel's receive timestamps, so a
// receiver that is descheduled still sees when each packet arrived.
var base = time.Now().UnixNano()

// since returns the wall-clock time since base.
func since() time.Duration { return time.Duration(time.Now().UnixNano() - base) }

func stamp(b []byte, seq uint64) {
	binary.BigEndian.PutUint64(b[0:8], seq)
	binary.BigEndian.PutUint64(b[8:16], uint64(since()))
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

func newReceiver(t testing.TB, echo bool) *receiver {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(socketBuffer)
	return startReceiver(t, c, echo)
}

func startReceiver(t testing.TB, c *net.UDPConn, echo bool) *receiver {
	r := &receiver{conn: c, echo: echo, cond: make(chan struct{})}
	enableRxTime(c)
	r.wg.Add(1)
	go r.loop()
	t.Cleanup(r.close)
	return r
}

// collector records what comes back on a sender's socket.
type collector = receiver

func newCollector(t testing.TB, c *net.UDPConn) *collector { return startReceiver(t, c, false) }

func (r *receiver) addr() string { return r.conn.LocalAddr().String() }

func (r *receiver) loop() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		n, oobn, _, from, err := r.conn.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		now := time.Now()
		at := since() - now.Sub(rxTime(oob[:oobn], now))
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
func (r *receiver) waitFor(t testing.TB, timeout time.Duration, what string, ok func([]arrival) bool) []arrival {
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
func dial(t testing.TB, addr string) *net.UDPConn {
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
func sendPaced(t testing.TB, c *net.UDPConn, size int, rateBps float64, dur time.Duration) uint64 {
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
func sendEvery(t testing.TB, c *net.UDPConn, size, n int, gap time.Duration) {
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

func newTestRelay(t testing.TB, target string, p Profile) *Relay {
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

// retryTiming runs check up to three times and fails the test only if
// every run reported a problem. Timing tests share two cores with other
// work: a process that takes the CPU for tens of milliseconds stalls the
// relay's reader, which no emulator can correct, while a wrong emulator
// fails every run. Setup failures still end the test at once.
func retryTiming(t *testing.T, check func(errorf func(format string, args ...any))) {
	t.Helper()
	var problems []string
	for attempt := 1; attempt <= 3; attempt++ {
		problems = problems[:0]
		check(func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) })
		if len(problems) == 0 {
			return
		}
		t.Logf("attempt %d: %s", attempt, strings.Join(problems, "; "))
	}
	for _, p := range problems {
		t.Error(p)
	}
}
