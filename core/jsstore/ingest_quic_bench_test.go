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
// answers each op on it with an ACK frame's bytes, in one write, storing
// nothing. It is what QUIC costs on this machine for the benchmark's
// pattern of streams: a core on quic-go streams cannot beat it, whatever
// its store does.
type quicFloor struct {
	rate float64       // ops per second
	cpu  time.Duration // the process's CPU, clients and server
	pkts float64       // packets per op, both directions
}

// report reports the floor of b's b.N ops beside the raw baseline's and
// the core's ops/s.
func (f quicFloor) report(b *testing.B, rawRate, coreRate float64) {
	b.ReportMetric(f.rate, "quic-ops/s")
	b.ReportMetric(float64(f.cpu.Microseconds())/float64(b.N), "quic-cpu-us/op")
	b.ReportMetric(f.pkts, "quic-pkts/op")
	b.ReportMetric(f.rate/rawRate, "quic-vs-raw")
	b.ReportMetric(coreRate/f.rate, "ratio-vs-quic")
}

// measureQUICFloor is the floor of the benchmark's stream per op: n ops
// op by agents clients, each op on a stream of its own, the next op
// taken by the first client done with its last.
func measureQUICFloor(b *testing.B, pk *testutil.PKI, agents, n int, op []byte) quicFloor {
	return runQUICFloor(b, pk, agents, n, op, func(conns []*quic.Conn, answer []byte) error {
		bufs := make([][]byte, agents)
		for w := range bufs {
			bufs[w] = make([]byte, len(answer))
		}
		return testutil.Share(n, agents, func(i, w int) error {
			if err := quicOps(conns[w], op, 1, bufs[w]); err != nil {
				return fmt.Errorf("raw QUIC op %d: %w", i, err)
			}
			return nil
		})
	})
}

// measureQUICFloorBacklog is the floor of the backlog mode
// (benchIngestBacklog): client w sends backlogs[w], each of its parts on
// a stream of its own, as many copies of op back to back in one write,
// and awaits their answers before the next part.
func measureQUICFloorBacklog(b *testing.B, pk *testutil.PKI, backlogs [][][]int, op []byte) quicFloor {
	agents, n := len(backlogs), 0
	for _, parts := range backlogs {
		for _, ops := range parts {
			n += len(ops)
		}
	}
	return runQUICFloor(b, pk, agents, n, op, func(conns []*quic.Conn, answer []byte) error {
		return testutil.Share(agents, agents, func(w, _ int) error {
			var frames, answers []byte
			for k, ops := range backlogs[w] {
				frames, answers = frames[:0], answers[:0]
				for range ops {
					frames = append(frames, op...)
					answers = append(answers, answer...)
				}
				if err := quicOps(conns[w], frames, len(ops), answers); err != nil {
					return fmt.Errorf("raw QUIC stream %d of client %d: %w", k, w, err)
				}
			}
			return nil
		})
	})
}

// floorOp is the bytes of one op as the simulated agents send it, the
// floors' op: payload 0 as an event, sent whole (all the benchmark's ops
// are as long).
func floorOp(b *testing.B, p *ingestPayloads) []byte {
	c := &ingestClient{}
	if _, err := c.appendOp(0, p); err != nil {
		b.Fatal(err)
	}
	return c.frame
}

// runQUICFloor starts the floor's server and agents clients, runs run, n
// ops, and measures it. The server answers a stream of k copies of op
// with k ACK frames' bytes.
func runQUICFloor(b *testing.B, pk *testutil.PKI, agents, n int, op []byte, run func(conns []*quic.Conn, answer []byte) error) quicFloor {
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
					served.Go(func() { answerFloor(str, len(op), answer) })
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

	pkts0 := count()
	cpu0 := selfCPU(b)
	start := time.Now()
	err = run(conns, answer)
	elapsed := time.Since(start)
	f := quicFloor{rate: float64(n) / elapsed.Seconds(), cpu: selfCPU(b) - cpu0, pkts: float64(count()-pkts0) / float64(n)}
	if err != nil {
		b.Fatal(err)
	}
	return f
}

// answerFloor is the floor server's side of a stream: it reads the
// stream to its end, copies of an op of opLen bytes, and answers each op
// with answer, in one write, then ends the stream.
func answerFloor(str *quic.Stream, opLen int, answer []byte) {
	n, err := io.Copy(io.Discard, str)
	if err != nil || n == 0 || n%int64(opLen) != 0 {
		// The client sees its stream reset: not whole ops.
		str.CancelWrite(0)
		return
	}
	out := make([]byte, 0, int(n)/opLen*len(answer))
	for range int(n) / opLen {
		out = append(out, answer...)
	}
	_, _ = str.Write(out) // a failure is the client's to see
	_ = str.Close()
}

// quicOps sends frames, ops ops, on a stream of its own and reads their
// answers into answers, as ingestClient.send and sendPacked do.
func quicOps(c *quic.Conn, frames []byte, ops int, answers []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	str, err := c.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	defer str.CancelRead(0)
	_ = str.SetDeadline(time.Now().Add(time.Minute)) // never fails
	if _, err := str.Write(frames); err != nil {
		return err
	}
	if err := str.Close(); err != nil {
		return err
	}
	if _, err := io.ReadFull(str, answers); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("the stream ended before the answers of its %d ops (%d bytes): %w", ops, len(answers), io.ErrUnexpectedEOF)
		}
		return err
	}
	return nil
}
