package jsstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/quic-go/quic-go"
	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// ingestOpBytes is the size of a benchmark op: a small event, the kind
// of op a fleet sends most.
const ingestOpBytes = 512

// BenchmarkCoreIngest: N simulated agents (1 to 1,000), each with its own
// certificate and QUIC connection, send small events to one core (send an
// op, wait for its ack, send the next), on the bbolt store and on
// JetStream, where also to two cores on one JetStream (the agents split
// between them). It
// reports the core's ops/s and the p99 time from send to ack, beside a
// raw baseline measured in the same run with the same payloads and the
// same N concurrent writers: bbolt Batch puts into a bbolt file, or
// JetStream publishes, each writer waiting for its ack. ratio-vs-raw is
// the core's ops/s over the baseline's. A second baseline sends the same
// ops through plain quic-go streams to a server that stores nothing
// (quicFloor): quic-vs-raw is its ops/s over the raw store's, what a core
// on QUIC streams could reach at best on this machine, and ratio-vs-quic
// the core's ops/s over it. Diagnostics:
// EDGESYNC_INGEST_PACKETS=1 and EDGESYNC_INGEST_CPUPROFILE=FILE
// (ingest_trace_test.go; docs/core.md, "A thousand agents").
//
// The sub-benchmarks named ops-per-stream=16 run the agents as the agent
// sends with CapOpsPerStream (docs/wire.md, "Several ops per stream"):
// each agent has a backlog, its share of the ops, and sends it 16 ops to
// a stream (fewer when its backlog is shorter), waiting for the stream's
// answers before the next. Each op's time from send to ack is its
// stream's. 16 ops of 512 B are 9.3 KiB on the wire, a write that leaves
// at once in quic-go's initial congestion window (32 packets); 64 would
// fill it, and at -benchtime 3000x the agents of the larger runs have
// 3 to 30 ops each anyway. Besides ratio-vs-raw (the same raw baseline
// as above, each writer waiting for each write), they report
// ratio-vs-raw-backlog, against a raw baseline whose writers have the
// same backlog and write it as fast as the raw API allows: 16 puts to a
// bbolt Batch call, or 16 asynchronous JetStream publishes and then their
// acks. Their floor is the same backlogs through plain quic-go streams
// (measureQUICFloorBacklog): 16 ops' bytes to a stream, as the agents
// pack them, each answered with an ACK frame's bytes in one write, nothing
// stored; besides quic-vs-raw they report quic-vs-raw-backlog, and
// ratio-vs-quic, the core's ops/s over the floor's: how close the core
// comes to what QUIC alone allows.
//
//	go test -run '^$' -bench BenchmarkCoreIngest -benchtime 2000x -count 3 ./core/jsstore
func BenchmarkCoreIngest(b *testing.B) {
	for _, backend := range []string{"bbolt", "jetstream"} {
		for _, n := range []int{1, 10, 100, 1000} {
			b.Run(fmt.Sprintf("backend=%s/agents=%d", backend, n), func(b *testing.B) { benchIngest(b, backend, n, 1, 1) })
			b.Run(fmt.Sprintf("backend=%s/agents=%d/ops-per-stream=%d", backend, n, ingestPerStream), func(b *testing.B) {
				benchIngest(b, backend, n, 1, ingestPerStream)
			})
			if backend == "jetstream" && n > 1 {
				b.Run(fmt.Sprintf("backend=%s/cores=2/agents=%d", backend, n), func(b *testing.B) { benchIngest(b, backend, n, 2, 1) })
			}
		}
	}
}

// ingestPerStream is how many ops the agents of BenchmarkCoreIngest's
// backlog mode send on one stream (see there why).
const ingestPerStream = 16

// ingestPayloads are the benchmark's ops' data and hashes.
type ingestPayloads struct {
	data [][]byte
	hash [][32]byte
}

// event is the header and data of the benchmark's event op n.
func (p *ingestPayloads) event(n uint64) (core.PartialHeader, []byte) {
	data := p.data[n%64]
	return core.PartialHeader{OpID: storetest.OpID(n), Key: "bench/events", Kind: edgesync.EventOp, Priority: edgesync.Normal,
		Size: int64(len(data)), Hash: p.hash[n%64]}, data
}

func newIngestPayloads() *ingestPayloads {
	p := &ingestPayloads{}
	for i := range 64 {
		d := storetest.Payload(uint64(i), ingestOpBytes)
		p.data = append(p.data, d)
		p.hash = append(p.hash, sha256.Sum256(d))
	}
	return p
}

// benchIngest runs agents against cores cores of backend, each agent
// sending per ops to a stream (1: a stream per op, send and wait).
func benchIngest(b *testing.B, backend string, agents, cores, per int) {
	pk := testutil.NewPKI(b, "bench")
	payloads := newIngestPayloads()
	var stores []core.Backend
	var raw func(i, writer int) error
	// rawBacklog writes the ops ops at once, as fast as the raw API
	// allows, and returns once all are durable.
	var rawBacklog func(ops []int, writer int) error
	switch backend {
	case "bbolt":
		s, err := core.Open(filepath.Join(b.TempDir(), "core.db"), core.Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		stores = append(stores, s)
		db, err := bolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { db.Close() })
		if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("raw")); return err }); err != nil {
			b.Fatal(err)
		}
		raw = func(i, _ int) error {
			k := binary.BigEndian.AppendUint64(nil, uint64(i))
			return db.Batch(func(tx *bolt.Tx) error { return tx.Bucket([]byte("raw")).Put(k, payloads.data[i%64]) })
		}
		rawBacklog = func(ops []int, _ int) error {
			return db.Batch(func(tx *bolt.Tx) error {
				for _, i := range ops {
					// Keys after the first baseline's: the same kind of
					// sequential puts into one bucket.
					k := binary.BigEndian.AppendUint64(nil, uint64(b.N+i))
					if err := tx.Bucket([]byte("raw")).Put(k, payloads.data[i%64]); err != nil {
						return err
					}
				}
				return nil
			})
		}
	case "jetstream":
		srv := natstest.Run(b)
		prefix := fmt.Sprintf("t%d", prefixes.Add(1))
		for range cores {
			stores = append(stores, openWith(b, Config{URLs: []string{srv.URL()}, Prefix: prefix}))
		}
		js, name := rawStream(b, 1, srv.URL())
		raw = func(i, writer int) error {
			_, err := js.Publish(context.Background(), fmt.Sprintf("%s.w%d", name, writer), payloads.data[i%64])
			return err
		}
		// The backlog's publishes on the same connection, with room for
		// every writer's at once (nats.go stalls at 4,000 by default).
		bjs, err := jetstream.New(js.Conn(), jetstream.WithPublishAsyncMaxPending(agents*per+1))
		if err != nil {
			b.Fatal(err)
		}
		rawBacklog = func(ops []int, writer int) error {
			return publishBacklog(bjs, fmt.Sprintf("%s.w%d", name, writer), payloads, ops)
		}
	}
	var addrs []string
	for i, store := range stores {
		srv, err := core.NewServer(core.ServerConfig{Name: fmt.Sprintf("bench-%d", i), TLS: pk.ServerTLS(b), Store: store, MaxConnections: agents + 10})
		if err != nil {
			b.Fatal(err)
		}
		// The core's goroutines, and the agents', carry a profile label
		// ("side"), so that a CPU profile tells their shares apart.
		pprof.Do(context.Background(), pprof.Labels("side", "core"), func(context.Context) {
			addr, _ := coretest.Serve(b, srv, "127.0.0.1:0")
			addrs = append(addrs, addr.String())
		})
	}
	clients := make([]*ingestClient, agents)
	pprof.Do(agentSide, pprof.Labels(), func(context.Context) {
		for i := range clients {
			clients[i] = dialIngest(b, pk, fmt.Sprintf("agent-%d", i), addrs[i%len(addrs)], per > 1)
		}
	})
	if per > 1 {
		benchIngestBacklog(b, pk, clients, payloads, per, raw, rawBacklog)
		return
	}

	lat := make([][]time.Duration, agents)
	coreTime, coreCPU, pkts := ingestWindow(b, clients, func() error {
		return testutil.Share(b.N, agents, func(i, w int) error {
			t0 := time.Now()
			if err := clients[w].send(i, payloads); err != nil {
				return err
			}
			lat[w] = append(lat[w], time.Since(t0))
			return nil
		})
	})

	// The raw baseline: the same number of writes of the same payloads by
	// as many concurrent writers.
	rawTime, rawCPU := timed(b, func() error { return testutil.Share(b.N, agents, raw) })

	// The transport's floor: the same ops through plain quic-go streams.
	floor := measureQUICFloor(b, pk, agents, b.N, floorOp(b, payloads))

	rawRate := reportIngest(b, lat, coreTime, coreCPU, rawTime, rawCPU, pkts)
	floor.report(b, rawRate, float64(b.N)/coreTime.Seconds())
}

// reportIngest reports what both modes of BenchmarkCoreIngest measure:
// the core's ops/s and p99 time from send to ack (lat, per agent), the
// raw baseline's, their ratio, CPU and packets per op. It returns the raw
// baseline's ops/s.
func reportIngest(b *testing.B, lat [][]time.Duration, coreTime, coreCPU, rawTime, rawCPU time.Duration, pkts ingestCounts) float64 {
	all := slices.Concat(lat...)
	slices.Sort(all)
	coreRate := float64(b.N) / coreTime.Seconds()
	rawRate := float64(b.N) / rawTime.Seconds()
	b.ReportMetric(coreRate, "ops/s")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(rawRate, "raw-ops/s")
	b.ReportMetric(coreRate/rawRate, "ratio-vs-raw")
	b.ReportMetric(float64(coreCPU.Microseconds())/float64(b.N), "cpu-us/op")
	b.ReportMetric(float64(rawCPU.Microseconds())/float64(b.N), "raw-cpu-us/op")
	b.ReportMetric(float64(pkts.sent+pkts.received)/float64(b.N), "pkts/op")
	b.ReportMetric(float64(pkts.lost)/float64(b.N), "lost-pkts/op")
	return rawRate
}

// ingestWindow runs fn, the simulated agents' work, as the timed window
// of BenchmarkCoreIngest: the benchmark's timer, the diagnostics' CPU
// profile and packet trace, the agents' profile label. It returns how
// long fn took, the process's CPU meanwhile and the agents' packets.
func ingestWindow(b *testing.B, clients []*ingestClient, fn func() error) (time.Duration, time.Duration, ingestCounts) {
	b.ResetTimer()
	stopProfile := windowProfile(b)
	ingestTrace.start()
	pkts0 := ingestPackets(clients)
	cpu0 := selfCPU(b)
	start := time.Now()
	var err error
	pprof.Do(agentSide, pprof.Labels(), func(context.Context) { err = fn() })
	took := time.Since(start)
	cpu := selfCPU(b) - cpu0
	pkts := ingestPackets(clients).sub(pkts0)
	b.StopTimer()
	stopProfile()
	ingestTrace.stop(b, clients)
	if err != nil {
		b.Fatal(err)
	}
	return took, cpu, pkts
}

// timed runs fn, a baseline, and returns how long it took and the
// process's CPU meanwhile.
func timed(b *testing.B, fn func() error) (time.Duration, time.Duration) {
	cpu0 := selfCPU(b)
	start := time.Now()
	err := fn()
	took, cpu := time.Since(start), selfCPU(b)-cpu0
	if err != nil {
		b.Fatal(err)
	}
	return took, cpu
}

// ingestCounts are QUIC packet counts of the simulated agents'
// connections: both directions, as each agent sees them, and the packets
// its loss detection declared lost (each sent again, at a cost of CPU).
type ingestCounts struct{ sent, received, lost uint64 }

func ingestPackets(clients []*ingestClient) ingestCounts {
	var n ingestCounts
	for _, c := range clients {
		st := c.conn.ConnectionStats()
		n.sent += st.PacketsSent
		n.received += st.PacketsReceived
		n.lost += st.PacketsLost
	}
	return n
}

func (n ingestCounts) sub(m ingestCounts) ingestCounts {
	return ingestCounts{n.sent - m.sent, n.received - m.received, n.lost - m.lost}
}

// ingestClient is a simulated agent: its own certificate and QUIC
// connection, sending whole small ops as the agent sends one-chunk ops
// (header, data and commit in one write, then the answers).
type ingestClient struct {
	conn  *quic.Conn
	id    uint64
	enc   codec.Encoder
	frame []byte // the op's frames, written at once
}

func dialIngest(b *testing.B, pk *testutil.PKI, name, addr string, packed bool) *ingestClient {
	b.Helper()
	tlsConf := pk.AgentTLS(b, name, wire.ALPN)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	qc := wire.QUICConfig(64)
	qc.Tracer = ingestTrace.tracer()
	conn, err := quic.DialAddr(ctx, addr, tlsConf, qc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.CloseWithError(0, "") })
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		b.Fatal(err)
	}
	hello := &wire.Hello{Versions: wire.SupportedVersions, Agent: name}
	if packed {
		hello.Caps = wire.CapOpsPerStream
	}
	if err := wire.WriteFrame(str, hello); err != nil {
		b.Fatal(err)
	}
	if f, err := wire.ReadFrame(str, wire.MaxFrameSize); err != nil {
		b.Fatal(err)
	} else if w, ok := f.(*wire.Welcome); !ok {
		b.Fatalf("hello answered with %s", f.Type())
	} else if packed && !w.Caps.Has(wire.CapOpsPerStream) {
		b.Fatal("the core did not grant several ops per stream")
	}
	// Read the core's end of the hello stream, then close ours as the
	// agent does. The core ends its receive side once it answered
	// (STOP_SENDING), so the close may find the stream canceled already.
	if _, err := io.Copy(io.Discard, str); err != nil {
		b.Fatal(err)
	}
	_ = str.Close()
	return &ingestClient{conn: conn, id: uint64(time.Now().UnixNano())}
}

// appendOp appends the frames of op i (payload i%64), an event sent
// whole, to c.frame and returns its ID.
func (c *ingestClient) appendOp(i int, p *ingestPayloads) (edgesync.OpID, error) {
	c.id++
	var id edgesync.OpID
	binary.BigEndian.PutUint64(id[:8], c.id)
	binary.BigEndian.PutUint64(id[8:], uint64(i))
	data, hash := p.data[i%64], p.hash[i%64]
	ch, err := codec.NewHeader(codec.ModeFull, codec.LevelDefault, 64<<10, int64(len(data)), codec.Hash(hash), nil)
	if err != nil {
		return id, err
	}
	chunk, err := c.enc.EncodeChunk(nil, &ch, 0, data, nil)
	if err != nil {
		return id, err
	}
	frames := []wire.Frame{
		&wire.OpHeader{ID: id, Key: "bench/events", Priority: edgesync.Normal, Kind: edgesync.EventOp, Mode: uint8(codec.ModeFull),
			PlainSize: uint64(len(data)), ChunkSize: uint32(ch.ChunkSize), PayloadHash: hash},
		&wire.Data{ID: id, Offset: 0, Chunk: chunk},
		&wire.Commit{ID: id, Chunks: 1}, // as the agent's: no byte count or hash of the chunks
	}
	for _, f := range frames {
		if c.frame, err = f.Append(c.frame); err != nil {
			return id, err
		}
	}
	return id, nil
}

// writeStream opens a stream and writes c.frame on it in one write,
// then closes its write side. As the agent does: the write side closes
// with the last COMMIT, the read side once answered (the caller's
// CancelRead), so that QUIC counts the stream out of the connection's
// concurrent streams.
func (c *ingestClient) writeStream() (*quic.Stream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	str, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	_ = str.SetDeadline(time.Now().Add(time.Minute)) // never fails
	if _, err := str.Write(c.frame); err != nil {
		str.CancelRead(0)
		return nil, err
	}
	if err := str.Close(); err != nil {
		str.CancelRead(0)
		return nil, err
	}
	return str, nil
}

// send sends op i (payload i%64) as an event and waits for its Ack.
func (c *ingestClient) send(i int, p *ingestPayloads) error {
	// One write, as the agent sends an op of one chunk (agent/sendop_whole.go).
	c.frame = c.frame[:0]
	id, err := c.appendOp(i, p)
	if err != nil {
		return err
	}
	str, err := c.writeStream()
	if err != nil {
		return err
	}
	defer str.CancelRead(0)
	for {
		f, err := wire.ReadFrame(str, wire.MaxFrameSize)
		if err != nil {
			return fmt.Errorf("op %s: %w", id, err)
		}
		switch f := f.(type) {
		case *wire.ResumeAnswer:
		case *wire.Ack:
			return nil
		case *wire.Nack:
			return fmt.Errorf("op %s refused: %s %s", id, f.Code, f.Msg)
		default:
			return fmt.Errorf("op %s answered with %s", id, f.Type())
		}
	}
}

// publishBacklog is the raw backlog baseline's write: the payloads of
// ops published to subject at once, asynchronously, then their acks
// awaited.
func publishBacklog(js jetstream.JetStream, subject string, p *ingestPayloads, ops []int) error {
	futures := make([]jetstream.PubAckFuture, 0, len(ops))
	for _, i := range ops {
		f, err := js.PublishAsync(subject, p.data[i%64])
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-time.After(time.Minute):
			return fmt.Errorf("raw publish not acknowledged within a minute")
		}
	}
	return nil
}

// BenchmarkStoreEvent is the store's share of BenchmarkCoreIngest: a small
// event received as the server receives it (begin, write, commit), with
// no network in front, beside one raw JetStream publish of the same
// payload in the same run.
//
//	go test -run '^$' -bench BenchmarkStoreEvent -benchtime 3000x -count 3 ./core/jsstore
func BenchmarkStoreEvent(b *testing.B) {
	srv := natstest.Run(b)
	s := openTest(b, srv.URL(), core.Config{})
	js, name := rawStream(b, 1, srv.URL())
	ctx := context.Background()
	p := newIngestPayloads()
	var storeTime, rawTime time.Duration
	n := uint64(0)
	for b.Loop() {
		n++
		h, data := p.event(n)
		t0 := time.Now()
		if _, err := sendOp(s, "bench", h, data); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := js.Publish(ctx, name+".raw", data); err != nil {
			b.Fatal(err)
		}
		storeTime += t1.Sub(t0)
		rawTime += time.Since(t1)
	}
	b.ReportMetric(float64(storeTime.Microseconds())/float64(n), "store-us/op")
	b.ReportMetric(float64(rawTime.Microseconds())/float64(n), "raw-us/op")
	b.ReportMetric(float64(rawTime)/float64(storeTime), "ratio-vs-raw")
}

// rawStream connects a plain JetStream client to the servers at urls and
// makes a stream of its own with replicas for the raw baseline; publish
// to NAME.<anything>. A new cluster's peers may still be coming up: it
// asks for the stream for up to 30 s.
func rawStream(b *testing.B, replicas int, urls ...string) (jetstream.JetStream, string) {
	b.Helper()
	_, js := natstest.Connect(b, urls...)
	name := fmt.Sprintf("RAW%d", prefixes.Add(1))
	var err error
	if !testutil.Poll(30*time.Second, func() bool {
		_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage, Replicas: replicas})
		return err == nil
	}) {
		b.Fatalf("the raw stream %s, %d replicas, not made within 30 s: %v", name, replicas, err)
	}
	return js, name
}

// BenchmarkEventMarkerGuard measures what the marker guard of an event
// published without a batch costs (noMarker, events.go): small events
// committed alternately by a store with the guard and one without, on one
// server in the same run.
//
//	go test -run '^$' -bench BenchmarkEventMarkerGuard -benchtime 3000x -count 3 ./core/jsstore
func BenchmarkEventMarkerGuard(b *testing.B) {
	srv := natstest.Run(b)
	guarded := openTest(b, srv.URL(), core.Config{})
	plain := openTest(b, srv.URL(), core.Config{})
	plain.markerGuard = false
	if !guarded.markerGuard {
		b.Fatal("the embedded server does not take the guard")
	}
	p := newIngestPayloads()
	var took [2]time.Duration
	n := uint64(0)
	for b.Loop() {
		for i, s := range []*Store{guarded, plain} {
			n++
			h, data := p.event(n)
			t0 := time.Now()
			if _, err := sendOp(s, "bench", h, data); err != nil {
				b.Fatal(err)
			}
			took[i] += time.Since(t0)
		}
	}
	ops := float64(n / 2)
	b.ReportMetric(float64(took[0].Microseconds())/ops, "guard-us/op")
	b.ReportMetric(float64(took[1].Microseconds())/ops, "plain-us/op")
	b.ReportMetric(float64(took[0])/float64(took[1]), "ratio-vs-plain")
}
