package core

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/agenttest"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// TestEarlyAnswersFreeStreamSlots answers 150 ops early on one connection
// of at most 64 streams: a NACK to the header of an op too large (the
// client keeps its side open, as an agent waiting for the answer does), a
// NACK to an expired one-chunk op sent whole (header, DATA, COMMIT), a
// duplicate ACK to a one-chunk op applied before, and an ERROR to a stream
// that opens with COMMIT. quic-go frees a stream's slot only once it is
// read to its end or cancelled, so a core that does neither stops every
// new stream after 63 such answers.
func TestEarlyAnswersFreeStreamSlots(t *testing.T) {
	ts := startServer(t, Config{}, func(c *ServerConfig) { c.MaxStreams = 64; c.MaxOpBytes = 1 << 20 })
	c := ts.dial(t, 0)

	dupID := edgesync.OpID{0xd0}
	dupData := []byte("applied before")
	dupHdr := PartialHeader{OpID: dupID, Key: "dup", Kind: edgesync.EventOp, Priority: edgesync.Normal,
		Size: int64(len(dupData)), Hash: sha256.Sum256(dupData)}
	if _, err := ts.store.Apply("site-1", dupHdr, bytes.NewReader(dupData)); err != nil {
		t.Fatal(err)
	}

	for i := range 150 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		str, err := c.Open(ctx)
		cancel()
		if err != nil {
			t.Fatalf("stream %d did not open within 10 s (%v): the core has not freed the slots of the streams it answered early", i, err)
		}
		kind, want := earlyAnswer(t, str, i, dupID, dupData)
		f, err := hostile.Read(str, 10*time.Second)
		if err != nil {
			t.Fatalf("stream %d (%s): no answer: %v", i, kind, err)
		}
		if f.Type() != want {
			t.Fatalf("stream %d (%s): answered %s, want %s", i, kind, f.Type(), want)
		}
	}
}

// earlyAnswer writes the i-th case of TestEarlyAnswersFreeStreamSlots to
// str and returns its name and the frame type the core must answer.
func earlyAnswer(t *testing.T, str *quic.Stream, i int, dupID edgesync.OpID, dupData []byte) (string, wire.FrameType) {
	t.Helper()
	id := hostile.OpID(0, i)
	var err error
	var name string
	var want wire.FrameType
	switch i % 4 {
	case 0:
		// A two-chunk op over MaxOpBytes: the agent waits for the
		// answer before sending more, and keeps its side open.
		name, want = "too large, side left open", wire.FrameNack
		err = hostile.Write(str, hostile.OpHeader(id, "big", 2<<20, 1<<20))
	case 1:
		name, want = "expired, sent whole", wire.FrameNack
		payload := []byte(fmt.Sprintf("expired %d", i))
		hdr := hostile.OpHeader(id, "late", uint64(len(payload)), 64<<10)
		hdr.PayloadHash, hdr.Expires = sha256.Sum256(payload), time.Now().Add(-time.Hour)
		err = errors.Join(hostile.Write(str, hdr, fullChunk(t, id, payload), &wire.Commit{ID: id, Chunks: 1}), str.Close())
	case 2:
		name, want = "duplicate, sent whole", wire.FrameAck
		hdr := hostile.OpHeader(dupID, "dup", uint64(len(dupData)), 64<<10)
		hdr.PayloadHash = sha256.Sum256(dupData)
		err = errors.Join(hostile.Write(str, hdr, fullChunk(t, dupID, dupData), &wire.Commit{ID: dupID, Chunks: 1}), str.Close())
	default:
		name, want = "opens with COMMIT", wire.FrameError
		err = hostile.Write(str, &wire.Commit{ID: id, Chunks: 1})
	}
	if err != nil {
		t.Fatalf("stream %d (%s): write: %v", i, name, err)
	}
	return name, want
}

// fullChunk is the DATA frame of a one-chunk op whose payload goes in
// full (codec.ModeFull) in chunks of 64 KiB.
func fullChunk(t *testing.T, id edgesync.OpID, payload []byte) *wire.Data {
	t.Helper()
	return fullChunkSized(t, id, payload, 64<<10, int64(len(payload)))
}

// fullChunkSized is the DATA frame of the first chunk, plain, of an op of
// size bytes in full (codec.ModeFull) in chunks of chunkSize bytes.
func fullChunkSized(t *testing.T, id edgesync.OpID, plain []byte, chunkSize int, size int64) *wire.Data {
	t.Helper()
	ch, err := codec.NewHeader(codec.ModeFull, codec.LevelDefault, chunkSize, size, sha256.Sum256(plain), nil)
	if err != nil {
		t.Fatal(err)
	}
	var enc codec.Encoder
	chunk, err := enc.EncodeChunk(nil, &ch, 0, plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &wire.Data{ID: id, Chunk: chunk}
}

// TestAgentRecoversFromManyBaseMismatches is the legitimate form of stream
// slots left behind by early answers: an agent pinned to delta holds the
// bases of 80 keys that a core whose store was wiped does not have. Each
// of its one-chunk ops goes out whole and is refused with a base-mismatch
// NACK right after its header; the agent then sends them in full. A core
// that never finished reading those streams ran out of stream slots after
// 63 NACKs and the rest of the ops sat there while the agent showed
// "connected".
func TestAgentRecoversFromManyBaseMismatches(t *testing.T) {
	const keys = 80
	first := startServer(t, Config{}, nil)
	wiped := startServerWith(t, first.pki, Config{}, nil)
	p := first.pki
	dataDir := t.TempDir()
	delta := edgesync.SyncDelta
	put := func(a *agent.Agent, version int) map[string][32]byte {
		want := map[string][32]byte{}
		for k := range keys {
			key := fmt.Sprintf("state/%02d", k)
			payload := bytes.Repeat([]byte(fmt.Sprintf("%s version %d;", key, version)), 100)
			if _, err := a.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: key, Kind: edgesync.StateOp,
				Priority: edgesync.Normal, Payload: bytes.NewReader(payload)}); err != nil {
				t.Fatal(err)
			}
			want[key] = sha256.Sum256(payload)
		}
		return want
	}

	a := startTestAgent(t, p, dataDir, first.addr)
	if err := a.Switch("core", linkmon.Pin{Mode: &delta}); err != nil {
		t.Fatal(err)
	}
	v1 := put(a, 1)
	testutil.WaitFor(t, 30*time.Second, "version 1 of every key at the first core, acknowledged", func() bool {
		st, err := a.Outbox().Stats()
		return first.holds(v1) && err == nil && st.Total.Ops == 0
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	// The same agent, with the delta bases of version 1, now meets a core
	// that has none of them.
	a = startTestAgent(t, p, dataDir, wiped.addr)
	if err := a.Switch("core", linkmon.Pin{Mode: &delta}); err != nil {
		t.Fatal(err)
	}
	v2 := put(a, 2)
	if !testutil.Poll(30*time.Second, func() bool { return wiped.holds(v2) }) {
		st := wiped.srv.Stats()
		t.Fatalf("after 30 s the wiped core holds %d of %d keys at version 2 (%d ops nacked, %d applied)",
			wiped.count(v2), keys, st.OpsNacked, st.OpsApplied)
	}
	if n := wiped.srv.Stats().OpsNacked; n < 64 {
		t.Fatalf("the wiped core nacked %d ops, want at least 64 base mismatches for the test to mean something", n)
	}
}

// count returns how many keys of want the store holds at the wanted hash.
func (ts *testServer) count(want map[string][32]byte) int {
	n := 0
	for key, h := range want {
		if v, _, err := ts.store.Current("site-1", key); err == nil && v.Hash == h {
			n++
		}
	}
	return n
}

func (ts *testServer) holds(want map[string][32]byte) bool { return ts.count(want) == len(want) }

// startTestAgent starts a real agent (agent.New, Start) with its data in
// dataDir and one endpoint, "core", at coreAddr.
func startTestAgent(t *testing.T, p *testutil.PKI, dataDir, coreAddr string) *agent.Agent {
	t.Helper()
	cfg := testAgentConfig(p, dataDir, coreAddr)
	fast := 50 * time.Millisecond
	cfg.Profiles[edgesync.Unknown] = config.Profile{Interval: &fast}
	return agenttest.Start(t, p, cfg, agent.Options{Logger: hclog.NewNullLogger()})
}

// testAgentConfig is the configuration of p's agent with its data in
// dataDir and one endpoint, "core", at coreAddr.
func testAgentConfig(p *testutil.PKI, dataDir, coreAddr string) config.Agent {
	cfg := config.DefaultAgent()
	cfg.Name = p.AgentName
	cfg.DataDir = dataDir
	cfg.TLS = config.TLS{CA: p.CAFile, Cert: p.AgentCert, Key: p.AgentKey}
	cfg.Control.Socket = "off"
	cfg.Endpoints = []config.Endpoint{{Name: "core", Address: coreAddr, ServerName: "127.0.0.1", Monitor: cfg.Monitor}}
	return cfg
}
