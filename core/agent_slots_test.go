package core

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/agenttest"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
)

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
	cfg := config.DefaultAgent()
	cfg.Name = p.AgentName
	cfg.DataDir = dataDir
	cfg.TLS = config.TLS{CA: p.CAFile, Cert: p.AgentCert, Key: p.AgentKey}
	cfg.Control.Socket = "off"
	fast := 50 * time.Millisecond
	cfg.Profiles[edgesync.Unknown] = config.Profile{Interval: &fast}
	cfg.Endpoints = []config.Endpoint{{Name: "core", Address: coreAddr, ServerName: "127.0.0.1", Monitor: cfg.Monitor}}
	return agenttest.Start(t, p, cfg, agent.Options{Logger: hclog.NewNullLogger()})
}
