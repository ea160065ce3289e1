package natstest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// SlowProxy listens on loopback and forwards every connection to target
// (a server's host:port), carrying what the server sends at most
// bytesPerSecond: a slow or distant link between a client and NATS. The
// other direction is not limited. It returns the URL to connect to;
// tb's cleanup closes the listener and every connection and waits for
// the proxy's goroutines.
func SlowProxy(tb testing.TB, target string, bytesPerSecond int) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &slowProxy{ln: ln, target: target, rate: bytesPerSecond, done: make(chan struct{})}
	p.wg.Go(p.accept)
	tb.Cleanup(p.close)
	return "nats://" + ln.Addr().String()
}

type slowProxy struct {
	ln     net.Listener
	target string
	rate   int
	done   chan struct{}

	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func (p *slowProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close() // nothing to forward to; the client sees the close
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		p.wg.Go(func() { p.forward(s, c, 0) })      // client to server
		p.wg.Go(func() { p.forward(c, s, p.rate) }) // server to client, slow
	}
}

// forward copies src to dst, at most rate bytes a second when rate > 0,
// and closes both when either side ends.
func (p *slowProxy) forward(dst, src net.Conn, rate int) {
	defer func() { _ = dst.Close(); _ = src.Close() }() // either may be closed already
	if rate <= 0 {
		_, _ = io.Copy(dst, src) // ends when a side closes; nothing to report
		return
	}
	buf := make([]byte, 16<<10)
	start := time.Now()
	var sent int64
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			sent += int64(n)
			// Pacing is what this proxy is for: hold the bytes back until
			// the rate allows them.
			due := start.Add(time.Duration(sent * int64(time.Second) / int64(rate)))
			select {
			case <-time.After(time.Until(due)):
			case <-p.done:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *slowProxy) close() {
	close(p.done)
	_ = p.ln.Close() // ends accept
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close() // ends the forwards
	}
	p.mu.Unlock()
	p.wg.Wait()
}
