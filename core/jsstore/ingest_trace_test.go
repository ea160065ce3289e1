package jsstore

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
)

// packetKinds counts the simulated agents' 1-RTT packets by kind, both
// directions, while on is set: a diagnostic of BenchmarkCoreIngest, on
// with EDGESYNC_INGEST_PACKETS=1 (quic-go's tracing costs CPU of its own,
// so the figures of a traced run are not the benchmark's).
type packetKinds struct {
	on     atomic.Bool
	mu     sync.Mutex
	n      map[string]int
	delays []time.Duration // the ACK delays the core reported
}

func (k *packetKinds) delay(d time.Duration) {
	k.mu.Lock()
	k.delays = append(k.delays, d)
	k.mu.Unlock()
}

var ingestTrace = func() *packetKinds {
	if os.Getenv("EDGESYNC_INGEST_PACKETS") == "" {
		return nil
	}
	return &packetKinds{n: map[string]int{}}
}()

func (k *packetKinds) tracer() func(context.Context, bool, quic.ConnectionID) qlogwriter.Trace {
	if k == nil {
		return nil
	}
	return func(context.Context, bool, quic.ConnectionID) qlogwriter.Trace {
		return &kindTrace{k: k, sent: map[int64]int64{}, recv: map[int64]int64{}}
	}
}

// agentSide labels the simulated agents' goroutines in a CPU profile.
var agentSide = pprof.WithLabels(context.Background(), pprof.Labels("side", "agent"))

func (k *packetKinds) start() {
	if k != nil {
		k.on.Store(true)
	}
}

// stop ends the count and logs it per op, with the core's ACK delays
// and the agents' RTT estimates.
func (k *packetKinds) stop(b *testing.B, clients []*ingestClient) {
	if k == nil {
		return
	}
	k.on.Store(false)
	ops := b.N
	k.mu.Lock()
	defer k.mu.Unlock()
	var keys []string
	for s := range k.n {
		keys = append(keys, s)
	}
	slices.Sort(keys)
	var sb strings.Builder
	for _, s := range keys {
		fmt.Fprintf(&sb, " %s=%.2f", s, float64(k.n[s])/float64(ops))
	}
	b.Logf("packets per op by kind (agent's view):%s", sb.String())
	clear(k.n)
	if len(k.delays) > 0 {
		slices.Sort(k.delays)
		q := func(p int) time.Duration { return k.delays[len(k.delays)*p/100] }
		b.Logf("ack delay the core reported: p10 %v p50 %v p90 %v p99 %v max %v (%d acks)", q(10), q(50), q(90), q(99), k.delays[len(k.delays)-1], len(k.delays))
		k.delays = k.delays[:0]
	}
	var rtts, devs []time.Duration
	for _, c := range clients {
		st := c.conn.ConnectionStats()
		rtts = append(rtts, st.SmoothedRTT)
		devs = append(devs, st.MeanDeviation)
	}
	slices.Sort(rtts)
	slices.Sort(devs)
	b.Logf("agents' smoothed RTT p10 %v p50 %v p90 %v; mean deviation p50 %v p90 %v",
		rtts[len(rtts)/10], rtts[len(rtts)/2], rtts[len(rtts)*9/10], devs[len(devs)/2], devs[len(devs)*9/10])
}

type kindTrace struct {
	k  *packetKinds
	mu sync.Mutex
	// sent and recv: each stream's highest byte sent/received, so that a
	// STREAM frame that carries nothing new counts as a retransmission.
	sent, recv map[int64]int64
}

func (t *kindTrace) AddProducer() qlogwriter.Recorder { return t }
func (t *kindTrace) Close() error                     { return nil }

func (t *kindTrace) RecordEvent(e qlogwriter.Event) {
	if !t.k.on.Load() {
		return
	}
	var dir string
	var frames []qlog.Frame
	var hdr qlog.PacketHeader
	var seen map[int64]int64
	switch e := e.(type) {
	case qlog.PacketSent:
		dir, frames, hdr, seen = "out", e.Frames, e.Header, t.sent
	case qlog.PacketReceived:
		dir, frames, hdr, seen = "in", e.Frames, e.Header, t.recv
	case qlog.PacketLost:
		t.add("lost")
		return
	default:
		return
	}
	if hdr.PacketType != qlog.PacketType1RTT {
		t.add(dir + "-" + string(hdr.PacketType))
		return
	}
	t.mu.Lock()
	kinds := map[string]bool{}
	for _, f := range frames {
		switch f := f.Frame.(type) {
		case *qlog.AckFrame:
			kinds["ack"] = true
			if dir == "in" {
				t.k.delay(f.DelayTime)
			}
		case *qlog.StreamFrame:
			end := f.Offset + f.Length
			if f.Fin {
				end++
			}
			if end <= seen[int64(f.StreamID)] {
				kinds["stream-again"] = true // a retransmission: nothing new
			} else {
				seen[int64(f.StreamID)] = end
				kinds["stream"] = true
			}
		case *qlog.PingFrame:
			kinds["ping"] = true
		case *qlog.MaxStreamsFrame:
			kinds["max_streams"] = true
		case *qlog.StopSendingFrame:
			kinds["stop_sending"] = true
		case *qlog.ResetStreamFrame:
			kinds["reset"] = true
		case *qlog.DatagramFrame:
			kinds["datagram"] = true
		default:
			kinds[fmt.Sprintf("%T", f)] = true
		}
	}
	t.mu.Unlock()
	var ks []string
	for s := range kinds {
		ks = append(ks, s)
	}
	slices.Sort(ks)
	t.add(dir + ":" + strings.Join(ks, "+"))
}

func (t *kindTrace) add(s string) {
	t.k.mu.Lock()
	t.k.n[s]++
	t.k.mu.Unlock()
}

// windowProfile writes a CPU profile of the benchmark's timed window to
// EDGESYNC_INGEST_CPUPROFILE, if set (the test binary's -cpuprofile holds
// the agents' handshakes too).
func windowProfile(b *testing.B) func() {
	path := os.Getenv("EDGESYNC_INGEST_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(fmt.Sprintf("%s.%s", path, strings.NewReplacer("/", "_", "=", "").Replace(b.Name())))
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
