package jsstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// quicFloor is BenchmarkCoreIngest's second baseline: the same number of
// ops, of the same bytes, by as many clients, each with its own
// certificate and QUIC connection (wire.QUICConfig, as agent and core),
// to a plain quic-go server that reads each op stream to its end and
// answers with an ACK frame's bytes, storing nothing. It is what QUIC
// with a stream per op costs on this machine: a core on quic-go streams
// cannot beat it, whatever its store does.
type quicFloor struct {
	rate float64       // ops per second
	cpu  time.Duration // the process's CPU, clients and server
	pkts float64       // packets per op, both directions
}

func measureQUICFloor(b *testing.B, pk *testutil.PKI, agents, n int, op []byte) quicFloor {
	b.Helper()
	answer, err := (&wire.Ack{IDs: []edgesync.OpID{{}}}).Append(nil)
	if err != nil {
		b.Fatal(err)
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()
	tlsConf := pk.ServerTLS(b)
	tlsConf.NextProtos = []string{wire.ALPN}
	ln, err := tr.Listen(tlsConf, wire.QUICConfig(64))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var served sync.WaitGroup
	defer func() {
		cancel()
		ln.Close()
		served.Wait()
	}()
	served.Go(func() {
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			served.Go(func() {
				for {
					str, err := conn.AcceptStream(ctx)
					if err != nil {
						return
					}
					served.Go(func() {
						if _, err := io.Copy(io.Discard, str); err != nil {
							str.CancelWrite(0)
							return
						}
						_, _ = str.Write(answer) // a failure is the client's to see
						_ = str.Close()
					})
				}
			})
		}
	})

	conns := make([]*quic.Conn, agents)
	for i := range conns {
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
		conns[i], err = quic.DialAddr(dctx, pc.LocalAddr().String(), pk.AgentTLS(b, fmt.Sprintf("raw-%d", i), wire.ALPN), wire.QUICConfig(64))
		dcancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		for _, c := range conns {
			c.CloseWithError(0, "")
		}
	}()
	count := func() (p uint64) {
		for _, c := range conns {
			st := c.ConnectionStats()
			p += st.PacketsSent + st.PacketsReceived
		}
		return p
	}

	bufs := make([][]byte, agents)
	for w := range bufs {
		bufs[w] = make([]byte, len(answer))
	}
	pkts0 := count()
	cpu0 := selfCPU(b)
	start := time.Now()
	err = testutil.Share(n, agents, func(i, w int) error {
		if err := quicOp(conns[w], op, bufs[w]); err != nil {
			return fmt.Errorf("raw QUIC op %d: %w", i, err)
		}
		return nil
	})
	elapsed := time.Since(start)
	f := quicFloor{rate: float64(n) / elapsed.Seconds(), cpu: selfCPU(b) - cpu0, pkts: float64(count()-pkts0) / float64(n)}
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// quicOp sends op on a stream of its own and reads the answer, as
// ingestClient.send does.
func quicOp(c *quic.Conn, op, answer []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	str, err := c.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	defer str.CancelRead(0)
	_ = str.SetDeadline(time.Now().Add(time.Minute)) // never fails
	if _, err := str.Write(op); err != nil {
		return err
	}
	if err := str.Close(); err != nil {
		return err
	}
	if _, err := io.ReadFull(str, answer); err != nil {
		if errors.Is(err, io.EOF) {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	return nil
}
