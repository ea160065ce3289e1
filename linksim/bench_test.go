package linksim

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchSink counts what arrives and hands a send token back per packet,
// so a sender keeps a bounded window in flight instead of overrunning
// socket buffers.
type benchSink struct {
	conn   *net.UDPConn
	bytes  atomic.Int64
	tokens chan struct{}
	wg     sync.WaitGroup
}

const benchSize = 1200

func newBenchSink(b *testing.B, window int) *benchSink {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	_ = c.SetReadBuffer(socketBuffer)
	s := &benchSink{conn: c, tokens: make(chan struct{}, window)}
	for range window {
		s.tokens <- struct{}{}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.bytes.Add(int64(n))
			select {
			case s.tokens <- struct{}{}:
			default:
			}
		}
	}()
	b.Cleanup(func() { c.Close(); s.wg.Wait() })
	return s
}

// send sends one packet once a token is free; a packet lost on the way
// gives its token back after a timeout.
func (s *benchSink) send(b *testing.B, tx *net.UDPConn, buf []byte) {
	select {
	case <-s.tokens:
	default:
		select {
		case <-s.tokens:
		case <-time.After(50 * time.Millisecond):
		}
	}
	if _, err := tx.Write(buf); err != nil {
		b.Fatal(err)
	}
}

// pump sends packets to addr through s while more reports true and
// returns the delivered rate in Mbit/s.
func pump(b *testing.B, s *benchSink, addr string, more func() bool) float64 {
	tx := dial(b, addr)
	buf := make([]byte, benchSize)
	before := s.bytes.Load()
	start := time.Now()
	for more() {
		s.send(b, tx, buf)
	}
	return s.drain(b, before, start)
}

// times reports true n times.
func times(n int) func() bool { return func() bool { n--; return n >= 0 } }

// drain waits (bounded) for the packets in flight and returns Mbit/s
// delivered since start.
func (s *benchSink) drain(b *testing.B, before int64, start time.Time) float64 {
	for i := 0; len(s.tokens) < cap(s.tokens) && i < 200; i++ {
		time.Sleep(time.Millisecond) // no event marks "the last straggler is lost"
	}
	return float64(s.bytes.Load()-before) * 8 / time.Since(start).Seconds() / 1e6
}

// BenchmarkRelayThroughput measures the highest rate the relay forwards
// without shaping (the emulation ceiling on this machine), against a
// direct UDP send measured the same way in the same run.
func BenchmarkRelayThroughput(b *testing.B) {
	const window = 64 // larger windows overflow socket buffers and measure the 50 ms loss timeout
	s := newBenchSink(b, window)
	direct := pump(b, s, s.conn.LocalAddr().String(), times(20000))
	r, err := NewRelay(RelayConfig{Target: s.conn.LocalAddr().String(), Profile: Unshaped()})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetBytes(benchSize)
	relayed := pump(b, s, r.Addr().String(), b.Loop)
	b.ReportMetric(relayed, "Mbit/s")
	b.ReportMetric(direct, "direct-Mbit/s")
	b.ReportMetric(relayed/direct, "ratio-vs-direct")
}

// BenchmarkRelayShaped100M measures the delivered rate of a 100 Mbit/s
// profile against the configured rate.
func BenchmarkRelayShaped100M(b *testing.B) {
	const window = 800 // below the 100 ms queue (~1040 packets): no tail drops
	s := newBenchSink(b, window)
	r, err := NewRelay(RelayConfig{Target: s.conn.LocalAddr().String(),
		Profile: Profile{Name: "100M", Up: Direction{RateBps: 100 * mbit}}})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetBytes(benchSize)
	got := pump(b, s, r.Addr().String(), b.Loop)
	if d := r.Stats().Up.DroppedQueue; d > 0 {
		b.Errorf("%d tail drops with a window below the queue limit", d)
	}
	b.ReportMetric(got, "Mbit/s")
	b.ReportMetric(got/100, "ratio-vs-configured")
}
