package core

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// A hostile fleet: a child process (this test binary again) that opens
// many connections to an in-process core, as many op streams on each as
// the core allows, and leaves every stream in the middle of an op: a
// header of an op of two chunks, the first chunk whole (zstd, or a delta
// against the key's version), the second DATA frame's head and half its
// body. Nothing completes; the core holds every stream. The client's
// own memory is its process's, so the core's live heap is the test's.

const fleetChildEnv = "EDGE_SYNC_TEST_HOSTILE_FLEET"

// fleetSpec is what the child does, passed as JSON in fleetChildEnv.
type fleetSpec struct {
	Addr           string
	CA, Cert, Key  string
	Conns, Streams int
	// Delta sends delta chunks (codec.ModeDeltaZstd) against a base the
	// child stores first on each connection; else zstd chunks.
	Delta bool
	Chunk int
}

// fleetChild runs the fleet of fleetSpec, says "ready N" on stdout (N:
// the encoded bytes of the whole DATA frames it sent, which the core
// counts as it decodes them) and holds every stream until it is killed.
func fleetChild() {
	var sp fleetSpec
	if err := json.Unmarshal([]byte(os.Getenv(fleetChildEnv)), &sp); err != nil {
		fmt.Fprintln(os.Stderr, "fleet child:", err)
		os.Exit(2)
	}
	clients, n, err := runFleet(sp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet child:", err)
		os.Exit(1)
	}
	fmt.Printf("ready %d\n", n)
	// Until the parent closes stdin (or kills it): then every connection
	// is closed, so that the core lets go of it at once.
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range clients {
		_ = c.Close()
	}
	os.Exit(0)
}

// fleetPayload returns compressible plain bytes (text that varies) of n
// bytes; seed varies them.
func fleetPayload(seed, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "reading %d of sensor %d: temperature %d.%d C, status ok\n", i, seed, (i*7+seed)%40, i%10)
	}
	return b.Bytes()[:n]
}

// runFleet dials the fleet of sp and returns its clients and the bytes of
// whole DATA frames it sent.
func runFleet(sp fleetSpec) (clients []*hostile.Client, sent int64, err error) {
	tlsConf, err := pki.ClientTLSConfig(sp.CA, sp.Cert, sp.Key, "127.0.0.1")
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	size := 2 * sp.Chunk
	clients = make([]*hostile.Client, sp.Conns)
	bases := make([][]byte, sp.Conns)
	for c := range clients {
		cl, err := hostile.Dial(ctx, sp.Addr, tlsConf, 0)
		if err != nil {
			return clients, sent, fmt.Errorf("connection %d: %w", c, err)
		}
		clients[c] = cl
		if !sp.Delta {
			continue
		}
		// The delta ops' base, stored before any stream holds memory.
		bases[c] = fleetPayload(c, size)
		frames, err := hostile.StateOp(hostile.OpID(c, 1<<15), fmt.Sprintf("fleet/%d", c), bases[c], nil)
		if err != nil {
			return clients, sent, err
		}
		str, err := cl.Open(ctx)
		if err != nil {
			return clients, sent, err
		}
		if err := hostile.Write(str, frames...); err != nil {
			return clients, sent, err
		}
		if err := str.Close(); err != nil {
			return clients, sent, err
		}
		answers, err := hostile.ReadAll(str, 30*time.Second, 4)
		if err != nil || len(answers) == 0 || answers[len(answers)-1].Type() != wire.FrameAck {
			return clients, sent, fmt.Errorf("connection %d: base op answered %v, %v", c, answers, err)
		}
		sent += int64(len(frames[1].(*wire.Data).Chunk))
	}
	for c, cl := range clients {
		key, base := fmt.Sprintf("fleet/%d", c), bases[c]
		streams := sp.Streams
		if sp.Delta {
			// The base op's stream is finished, but the core holds its
			// credit back for a batch (server_credit.go).
			streams--
		}
		for s := range streams {
			id := hostile.OpID(c, s)
			plain := fleetPayload(c*1000+s, size)
			hdr, data, err := fleetOp(id, key, plain, base, sp.Chunk)
			if err != nil {
				return clients, sent, err
			}
			b, err := hostile.Append(nil, hdr, data[0])
			if err != nil {
				return clients, sent, err
			}
			second, err := data[1].Append(nil)
			if err != nil {
				return clients, sent, err
			}
			b = append(b, second[:len(second)-len(data[1].Chunk)/2]...)
			str, err := cl.Open(ctx)
			if err != nil {
				return clients, sent, fmt.Errorf("connection %d stream %d: %w", c, s, err)
			}
			if _, err := str.Write(b); err != nil {
				if _, ok := errors.AsType[*quic.StreamError](err); ok {
					continue // the core refused the stream (busy)
				}
				return clients, sent, fmt.Errorf("connection %d stream %d: %w", c, s, err)
			}
			sent += int64(len(data[0].Chunk))
		}
	}
	return clients, sent, nil
}

// fleetOp returns the header and the two DATA frames of op id of plain
// under key in chunks of chunk: zstd, or a delta against base when base
// is not nil.
func fleetOp(id edgesync.OpID, key string, plain, base []byte, chunk int) (*wire.OpHeader, []*wire.Data, error) {
	hdr := hostile.OpHeader(id, key, uint64(len(plain)), uint32(chunk))
	hdr.PayloadHash = sha256.Sum256(plain)
	mode, cb := codec.ModeZstd, (*codec.Base)(nil)
	if base != nil {
		mode, cb = codec.ModeDeltaZstd, codec.NewBase(base)
		hdr.Kind, hdr.HasBase, hdr.BaseHash = edgesync.StateOp, true, sha256.Sum256(base)
	}
	hdr.Mode = uint8(mode)
	ch, err := codec.NewHeader(mode, codec.LevelDefault, chunk, int64(len(plain)), codec.Hash(hdr.PayloadHash), cb)
	if err != nil {
		return nil, nil, err
	}
	var enc codec.Encoder
	var frames []*wire.Data
	for i := range ch.Chunks() {
		off, n, _ := ch.ChunkRange(i)
		b, err := enc.EncodeChunk(nil, &ch, i, plain[off:off+int64(n)], cb)
		if err != nil {
			return nil, nil, fmt.Errorf("encode chunk %d: %w", i, err)
		}
		frames = append(frames, &wire.Data{ID: id, Offset: uint64(off), Chunk: b})
	}
	return hdr, frames, nil
}

// fleetFigures is what a fleet made the core hold.
type fleetFigures struct {
	streams    int
	heap       int64 // live heap grown, bytes
	frameMem   int64 // the frame memory gauge then
	refused    int64 // frame memory reservations refused
	nacked     int64
	chunkBytes int64 // DATA bytes the core decoded
}

func (f fleetFigures) String() string {
	return fmt.Sprintf("live heap +%.1f MiB (%.1f KiB a stream), frame memory gauge %.1f MiB, %d reservations refused, %d ops refused",
		float64(f.heap)/(1<<20), float64(f.heap)/float64(max(1, f.streams))/1024, float64(f.frameMem)/(1<<20), f.refused, f.nacked)
}

// runFleetAgainst starts the fleet of sp (Addr and the PKI filled in from
// ts) in a child process and returns what the core holds once every
// stream's first chunk is decoded, and a func that has the child close
// its connections, waits for it to end and for the core to let go of
// them (it runs at tb's end too).
func runFleetAgainst(tb testing.TB, ts *testServer, sp fleetSpec) (fleetFigures, func()) {
	tb.Helper()
	sp.Addr, sp.CA, sp.Cert, sp.Key = ts.addr, ts.pki.CAFile, ts.pki.AgentCert, ts.pki.AgentKey
	spec, err := json.Marshal(sp)
	if err != nil {
		tb.Fatal(err)
	}
	before := liveMemory()
	var stderr testutil.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fleetChildEnv+"="+string(spec))
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = stdin.Close() // the child closes its connections and exits
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
			// The core lets go of every connection and stream, so that
			// the next fleet's figures start from here.
			testutil.WaitFor(tb, 30*time.Second, "the core to let go of the fleet", func() bool {
				st := ts.srv.Stats()
				return st.Connections == 0 && st.FrameMemory == 0
			})
		})
	}
	tb.Cleanup(stop)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Scan()
		ready <- sc.Text()
		_, _ = io.Copy(io.Discard, out)
	}()
	var sent int64
	select {
	case line := <-ready:
		n, found := strings.CutPrefix(line, "ready ")
		if !found {
			tb.Fatalf("fleet child said %q: %s", line, stderr.String())
		}
		if sent, err = strconv.ParseInt(n, 10, 64); err != nil {
			tb.Fatal(err)
		}
	case <-time.After(3 * time.Minute):
		tb.Fatalf("fleet child not ready within 3 min: %s", stderr.String())
	}
	// The core decodes the first chunks (or refuses them busy) and reads
	// the second DATA frames' heads and halves: wait until what it
	// counts has held still for a second.
	var last ServerStats
	since := time.Now()
	testutil.WaitFor(tb, 90*time.Second, fmt.Sprintf("the core to settle (%d bytes of first chunks sent)", sent), func() bool {
		st := ts.srv.Stats()
		if st.BytesReceived != last.BytesReceived || st.FrameMemory != last.FrameMemory || st.OpsNacked != last.OpsNacked {
			last, since = st, time.Now()
		}
		return time.Since(since) >= time.Second
	})
	st := ts.srv.Stats()
	streams := sp.Conns * sp.Streams
	if sp.Delta {
		streams -= sp.Conns
	}
	return fleetFigures{streams: streams, heap: liveMemory() - before, frameMem: st.FrameMemory,
		refused: st.FrameMemoryRefused, nacked: st.OpsNacked, chunkBytes: st.BytesReceived}, stop
}

// liveMemory collects garbage and returns the bytes of live heap objects
// and of goroutine stacks: each stream's goroutine is the core's memory
// too, and its stack is not in the heap.
func liveMemory() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc + ms.StackInuse)
}

// TestHostileFleetMemory: more and more connections × the streams each
// may open, every stream mid-op with zstd chunks, then with delta chunks,
// against a core whose frame memory is the least a config allows
// (limits.max_frame_memory and max_frame_memory_per_connection at 33
// MiB). The docs (docs/core.md, "The server under broken or hostile
// peers") bound what all peers together make the core hold by its
// configured memory; the live heap and stacks the fleet makes the core
// grow may pass it by no more than that again (for quic-go's buffers).
// The first fleet that makes it hold more fails the test, named with
// what it held a stream and a connection.
func TestHostileFleetMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("a fleet of connections: not in -short")
	}
	steps := []int{20, 40, 80}
	if raceEnabled {
		steps = []int{10, 20}
	}
	const bound, streams = MinConnFrameMemory, 64
	for _, delta := range []bool{false, true} {
		name := map[bool]string{false: "zstd", true: "delta"}[delta]
		t.Run(name, func(t *testing.T) {
			for _, conns := range steps {
				ts := startServer(t, Config{}, func(c *ServerConfig) {
					c.MaxFrameMemory, c.MaxConnFrameMemory, c.FrameTimeout = bound, bound, 5*time.Minute
				})
				fig, stop := runFleetAgainst(t, ts, fleetSpec{Conns: conns, Streams: streams, Delta: delta, Chunk: codec.MinChunkSize})
				stop()
				t.Logf("%d connections × %d streams, %s chunks: %v; bound %d MiB", conns, streams, name, fig, bound>>20)
				if fig.heap > 2*bound {
					t.Fatalf("%d connections × %d streams mid-op (%s chunks) grew the core's live heap and stacks by %d MiB, %.1f KiB a stream (%.0f KiB a connection): over twice the %d MiB of the core's frame memory (max_frame_memory), which bounds what all peers together make it hold; its gauge counted %.1f MiB of it",
						conns, streams, name, fig.heap>>20, float64(fig.heap)/float64(fig.streams)/1024, float64(fig.heap)/float64(conns)/1024,
						bound>>20, float64(fig.frameMem)/(1<<20))
				}
			}
		})
	}
}

// BenchmarkHostileFleetMemory reports what a hostile fleet (connections ×
// 64 streams, each mid-op as in TestHostileFleetMemory, zstd and delta
// chunks) makes a core of the least frame memory a config allows hold:
// the live heap and stacks it grows by, per connection (KiB/conn), beside
// the documented bound's share of a connection (bound-KiB/conn: the
// core's frame memory over the fleet's connections), and their ratio
// (heap-vs-bound; the docs allow quic-go's buffers on top, docs/core.md,
// "What a connection can make the core hold").
//
//	go test -run '^$' -bench HostileFleetMemory -benchtime 1x ./core
func BenchmarkHostileFleetMemory(b *testing.B) {
	const bound, conns, streams = MinConnFrameMemory, 80, 64
	for _, delta := range []bool{false, true} {
		b.Run(map[bool]string{false: "chunks=zstd", true: "chunks=delta"}[delta], func(b *testing.B) {
			var heap, held float64
			for range b.N {
				ts := startServer(b, Config{}, func(c *ServerConfig) {
					c.MaxFrameMemory, c.MaxConnFrameMemory, c.FrameTimeout = bound, bound, 5*time.Minute
				})
				fig, stop := runFleetAgainst(b, ts, fleetSpec{Conns: conns, Streams: streams, Delta: delta, Chunk: codec.MinChunkSize})
				stop()
				heap += float64(fig.heap)
				held += float64(fig.frameMem)
			}
			n := float64(b.N)
			b.ReportMetric(heap/n/conns/1024, "KiB/conn")
			b.ReportMetric(float64(bound)/conns/1024, "bound-KiB/conn")
			b.ReportMetric(held/n/conns/1024, "gauge-KiB/conn")
			b.ReportMetric(heap/n/float64(bound), "heap-vs-bound")
		})
	}
}

// TestRefusedStreamsHoldNoGoroutine: with the frame memory spent, each
// op stream the agent opens is answered ERROR busy naming the limit, and
// only maxDrainingRefusals of them at once have a goroutine (reading what
// the agent wrote at once): 40 streams that send a header and hold the
// stream open cost the core no goroutine each, as they did (a handler
// each, waiting for the frame timeout), outside any bound.
func TestRefusedStreamsHoldNoGoroutine(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := ts.dial(t, 0)
	spent := int(ts.srv.cfg.MaxFrameMemory) - 16
	if err := ts.srv.mem.Reserve(spent); err != nil {
		t.Fatal(err)
	}
	defer ts.srv.mem.Release(spent)
	before := runtime.NumGoroutine()
	const streams = 40
	for i := range streams {
		str := openStream(t, c)
		defer str.CancelRead(0)
		hdr := hostile.OpHeader(hostile.OpID(0, i), "held", 1<<20, 1<<20)
		if err := hostile.Write(str, hdr); err != nil {
			if _, ok := errors.AsType[*quic.StreamError](err); !ok {
				t.Fatalf("stream %d: %v", i, err)
			}
		}
		f, err := hostile.Read(str, 10*time.Second)
		if err != nil {
			t.Fatalf("stream %d: no answer within 10 s: %v", i, err)
		}
		if e, ok := f.(*wire.Error); !ok || e.Code != wire.CodeBusy || !strings.Contains(e.Msg, "max_frame_memory") {
			t.Fatalf("stream %d answered %s %+v, want ERROR busy naming the limit", i, f.Type(), f)
		}
	}
	if grown := runtime.NumGoroutine() - before; grown > maxDrainingRefusals+4 {
		t.Errorf("%d streams refused for want of frame memory, held open by the agent, left %d goroutines more in the process; at most %d read refused streams",
			streams, grown, maxDrainingRefusals)
	}
}
