package lane

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/linksim"
)

// benchLinks are the links of BenchmarkLaneGoodput with their transfer
// sizes: long enough to get well past startup.
// The 2 Mbit/s links are linksim's satellite-geo profiles (2 Mbit/s up,
// 20 down, 600 ms RTT, 200 ms queue); the others are symmetric with
// linksim's default 100 ms queue.
var benchLinks = []struct {
	name    string
	prof    linksim.Profile
	rateBps int64 // of the sending direction (Up)
	size    int
}{
	{"2mbit-600ms-0loss", linksim.SatelliteGEO(), 2e6, 4 << 20},
	{"2mbit-600ms-1loss", linksim.SatelliteGEOLossy(), 2e6, 8 << 20},
	{"10mbit-600ms-1loss", testLink{name: "10mbit-600ms-1loss", rateBps: 10e6, rtt: 600 * time.Millisecond, loss: 0.01}.profile(), 10e6, 16 << 20},
	{"50mbit-40ms-1loss", testLink{name: "50mbit-40ms-1loss", rateBps: 50e6, rtt: 40 * time.Millisecond, loss: 0.01}.profile(), 50e6, 64 << 20},
}

// rawQUICCap bounds the raw quic-go baseline: on lossy long links one Cubic
// connection needs minutes for the transfer, so its rate is taken from the
// bytes it delivered within this time.
const rawQUICCap = 30 * time.Second

// BenchmarkLaneGoodput sends one op through the lane over a shaped link
// and reports payload bit/s ÷ link rate (goodput-ratio), and the same
// transfer on one plain quic-go stream through the same kind of link
// (raw-goodput-ratio, ratio-vs-raw-quic = ours ÷ raw).
//
//	go test -run '^$' -bench BenchmarkLaneGoodput -benchtime=1x -count=3 ./wire/lane/
func BenchmarkLaneGoodput(b *testing.B) {
	for _, bl := range benchLinks {
		b.Run(bl.name, func(b *testing.B) {
			data := randomBytes(b, bl.size)
			var ours, raw, retx float64
			n := 0
			for b.Loop() {
				r, st := laneTransfer(b, bl.name, bl.prof, bl.rateBps, data, 0)
				ours += r
				retx += float64(st.Retransmits) / float64(max(st.PacketsSent, 1))
				raw += rawQUICTransfer(b, bl.name, bl.prof, bl.rateBps, data, nil)
				n++
			}
			ours, raw, retx = ours/float64(n), raw/float64(n), retx/float64(n)
			b.ReportMetric(ours/float64(bl.rateBps), "goodput-ratio")
			b.ReportMetric(raw/float64(bl.rateBps), "raw-goodput-ratio")
			b.ReportMetric(ours/raw, "ratio-vs-raw-quic")
			b.ReportMetric(retx, "retx-fraction")
		})
	}
}

// BenchmarkLaneGoodputResume is BenchmarkLaneGoodput's lane transfer with
// the link rate given as InitialRate (careful resume from linkmon's last
// capacity).
func BenchmarkLaneGoodputResume(b *testing.B) {
	for _, bl := range benchLinks {
		b.Run(bl.name, func(b *testing.B) {
			data := randomBytes(b, bl.size)
			var ours float64
			n := 0
			for b.Loop() {
				r, _ := laneTransfer(b, bl.name, bl.prof, bl.rateBps, data, bl.rateBps)
				ours += r
				n++
			}
			b.ReportMetric(ours/float64(n)/float64(bl.rateBps), "goodput-ratio")
		})
	}
}

// BenchmarkQUICAlternatives measures the simple alternatives to the lane:
// one quic-go connection with flow-control windows sized to 2 × BDP, and 8
// parallel quic-go connections through the same link, each carrying 1/8
// of the data.
func BenchmarkQUICAlternatives(b *testing.B) {
	for _, bl := range benchLinks[1:] {
		bdp := int(float64(bl.rateBps) / 8 * (2 * bl.prof.Up.Delay).Seconds())
		big := &quic.Config{
			InitialStreamReceiveWindow:     uint64(max(2*bdp, 512<<10)),
			InitialConnectionReceiveWindow: uint64(max(4*bdp, 1<<20)),
			MaxStreamReceiveWindow:         64 << 20,
			MaxConnectionReceiveWindow:     128 << 20,
		}
		b.Run(bl.name+"/bigwindows", func(b *testing.B) {
			data := randomBytes(b, bl.size)
			var r float64
			n := 0
			for b.Loop() {
				r += rawQUICTransfer(b, bl.name, bl.prof, bl.rateBps, data, big)
				n++
			}
			b.ReportMetric(r/float64(n)/float64(bl.rateBps), "goodput-ratio")
		})
		b.Run(bl.name+"/8conns", func(b *testing.B) {
			data := randomBytes(b, bl.size)
			var r float64
			n := 0
			for b.Loop() {
				r += parallelQUICTransfer(b, bl.name, bl.prof, bl.rateBps, data, 8, big)
				n++
			}
			b.ReportMetric(r/float64(n)/float64(bl.rateBps), "goodput-ratio")
		})
	}
}

// laneTransfer returns the payload rate in bit/s of one Send of data.
func laneTransfer(b *testing.B, name string, prof linksim.Profile, rateBps int64, data []byte, hint int64) (float64, Stats) {
	b.Helper()
	p := newPair(b, prof, nil)
	col := newCollector()
	cs, ss := p.sessions(b, Config{InitialRate: hint}, Config{Deliver: func(id [16]byte, off int64, d []byte) {
		col.mu.Lock()
		col.bytes += int64(len(d))
		col.mu.Unlock()
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stopTrace := traceSession(b, cs)
	start := time.Now()
	err := cs.Send(ctx, opID(1), 0, data, 3)
	stopTrace()
	if err != nil {
		b.Fatalf("lane send: %v", err)
	}
	el := time.Since(start)
	if got := col.total(); got != int64(len(data)) {
		b.Fatalf("delivered %d bytes, want %d", got, len(data))
	}
	st := cs.Stats()
	ls := p.relay.Stats().Up
	b.Logf("client sent %d pkts (%d retx); link up: %+v; server received %d",
		st.PacketsSent, st.Retransmits, ls, ss.Stats().PacketsReceived)
	b.Logf("%s lane: %.2f s, %.3f of link; %d pkts, %d retx, model %s btlbw %.2f Mbit/s minRTT %v; receiver refused %d dup %d",
		name, el.Seconds(), float64(len(data))*8/el.Seconds()/float64(rateBps), st.PacketsSent, st.Retransmits,
		st.State, st.BottleneckBps/1e6, st.MinRTT, ss.Stats().Refused, ss.Stats().Duplicates)
	cs.Close()
	ss.Close()
	p.close()
	return float64(len(data)) * 8 / el.Seconds(), st
}

// rawQUICTransfer sends data on one quic-go stream and returns the rate in
// bit/s at which the receiver got it (within rawQUICCap).
func rawQUICTransfer(b *testing.B, name string, prof linksim.Profile, rateBps int64, data []byte, conf *quic.Config) float64 {
	b.Helper()
	return parallelQUICTransfer(b, name, prof, rateBps, data, 1, conf)
}

// parallelQUICTransfer splits data over n quic-go connections through one
// shaped link and returns the aggregate rate in bit/s.
func parallelQUICTransfer(b *testing.B, name string, prof linksim.Profile, rateBps int64, data []byte, n int, conf *quic.Config) float64 {
	b.Helper()
	pairs := newPairs(b, prof, conf, n)
	ctx, cancel := context.WithTimeout(context.Background(), rawQUICCap)
	defer cancel()
	var received atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	chunk := (len(data) + n - 1) / n
	var finished atomic.Int64
	for i, p := range pairs {
		part := data[min(i*chunk, len(data)):min((i+1)*chunk, len(data))]
		wg.Add(2)
		go func() { // receiver
			defer wg.Done()
			s, err := p.server.conn.AcceptStream(ctx)
			if err != nil {
				return
			}
			buf := make([]byte, 64<<10)
			for {
				k, err := s.Read(buf)
				received.Add(int64(k))
				if err != nil {
					break
				}
			}
			if _, err := s.Write([]byte{1}); err == nil {
				s.Close()
			}
		}()
		go func() { // sender
			defer wg.Done()
			s, err := p.client.conn.OpenStreamSync(ctx)
			if err != nil {
				return
			}
			context.AfterFunc(ctx, func() { s.CancelRead(0); s.CancelWrite(0) })
			if _, err := s.Write(part); err != nil {
				return
			}
			s.Close()
			if _, err := io.ReadFull(s, make([]byte, 1)); err == nil {
				finished.Add(1)
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	got := received.Load()
	if finished.Load() != int64(n) && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		b.Fatalf("raw quic: %d of %d streams finished", finished.Load(), n)
	}
	for _, p := range pairs {
		p.close()
	}
	rate := float64(got) * 8 / el.Seconds()
	b.Logf("%s raw quic ×%d: %d of %d bytes in %.2f s, %.3f of link", name, n, got, len(data), el.Seconds(), rate/float64(rateBps))
	return rate
}
