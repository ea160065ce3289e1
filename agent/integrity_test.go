package agent

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// fillStopped enqueues ops into the outbox of an agent that is never
// started (nothing is sent) and closes it, so the ops wait on disk.
func fillStopped(t *testing.T, p *testutil.PKI, cfg config.Agent, payloads map[string][]byte) map[string]outbox.Op {
	t.Helper()
	a, err := New(cfg, Options{TLS: p.ClientTLS(t, "127.0.0.1"), Logger: testLogger(t, "agent")})
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]outbox.Op{}
	for key, data := range payloads {
		ops[key] = enqueue(t, a, outbox.NewOp{Endpoint: "core", Key: key, Priority: edgesync.Normal, Kind: edgesync.StateOp, Payload: bytes.NewReader(data)})
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	return ops
}

// incompressible returns n random bytes, so that the outbox stores them
// as they are and a test can find them in the file.
func incompressible(seed uint64, n int) []byte {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rnd.Uint32())
	}
	return b
}

// flipInFile finds data's middle in the file at path and inverts n bytes
// there, as a bad sector or a stray write would; it returns the file offset.
func flipInFile(t *testing.T, path string, data []byte, n int) int {
	t.Helper()
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mid := len(data)/2 - n/2
	at := bytes.Index(file, data[mid:mid+n])
	if at < 0 {
		t.Fatalf("the payload's bytes are not in %s as they are", path)
	}
	if bytes.Index(file[at+1:], data[mid:mid+n]) >= 0 {
		t.Fatalf("the payload's bytes are in %s twice", path)
	}
	for i := at; i < at+n; i++ {
		file[i] ^= 0xff
	}
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	return at
}

// TestDamagedOutboxNeverSendsWrongBytes puts ops into a stopped agent,
// flips 512 bytes in the middle of one op's payload inside the outbox
// file, starts the agent against a real core and checks that the core
// never stores bytes that differ from what was put.
func TestDamagedOutboxNeverSendsWrongBytes(t *testing.T) {
	p := testutil.NewPKI(t, "site-1")
	c := startCore(t, p, nil)
	cfg := agentConfig(t, p, c.addr.String())
	payloads := map[string][]byte{}
	for i := range 20 {
		payloads[fmt.Sprintf("obj/%d", i)] = incompressible(uint64(i), 64<<10)
	}
	ops := fillStopped(t, p, cfg, payloads)
	const victim = "obj/7"
	at := flipInFile(t, cfg.OutboxPath(), payloads[victim], 512)
	t.Logf("flipped 512 bytes of %s at file offset %d", victim, at)

	a := startAgent(t, p, cfg, Options{})
	testutil.WaitFor(t, 30*time.Second, "the outbox to drain", func() bool { return outboxEmpty(a) })
	for key, data := range payloads {
		got, err := coreData(t, c, "site-1", key)
		if err != nil {
			if key == victim {
				continue // not sent: right
			}
			t.Fatalf("core has no %s (op %s): %v", key, ops[key].ID, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: put SHA-256 %x, the core stores %x", key, sha256.Sum256(data), sha256.Sum256(got))
		}
	}
}
