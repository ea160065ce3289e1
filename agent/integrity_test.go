package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/outbox"
)

// fillStopped enqueues ops into the outbox of an agent that is never
// started (nothing is sent) and closes it, so the ops wait on disk.
func fillStopped(t *testing.T, p *testutil.PKI, cfg config.Agent, payloads map[string][]byte) map[string]outbox.Op {
	t.Helper()
	a, err := New(cfg, Options{TLS: p.ClientTLS(t, "127.0.0.1"), Logger: testutil.Logger(t, "agent")})
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

// TestDamagedOutboxNeverSendsWrongBytes puts ops into a stopped agent,
// flips 512 bytes in the middle of one op's payload inside the outbox
// file, starts the agent against a real core and checks that the core
// never stores bytes that differ from what was put: the damaged op is
// quarantined (visible in status, stats and /metrics, logged once) and
// every other op arrives byte for byte.
func TestDamagedOutboxNeverSendsWrongBytes(t *testing.T) {
	p, c, cfg := siteCore(t)
	payloads := map[string][]byte{}
	for i := range 20 {
		payloads[fmt.Sprintf("obj/%d", i)] = testutil.RandomBytes(uint64(i), 64<<10)
	}
	ops := fillStopped(t, p, cfg, payloads)
	const victim = "obj/7"
	at := testutil.Damage(t, cfg.OutboxPath(), payloads[victim], len(payloads[victim])/2-256, 512)
	t.Logf("flipped 512 bytes of %s at file offset %d", victim, at)

	var logs testutil.Buffer
	a := startAgent(t, p, cfg, Options{Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info})})
	drops, stop := a.SubscribeDrops()
	defer stop()
	testutil.WaitFor(t, 30*time.Second, "the outbox to drain", func() bool { return outboxEmpty(a) })
	for key, data := range payloads {
		got, err := c.Data("site-1", key)
		if key == victim {
			if err == nil {
				t.Errorf("%s: the core stores an op whose bytes were damaged in the outbox (put SHA-256 %x, stored %x)",
					key, sha256.Sum256(data), sha256.Sum256(got))
			}
			continue
		}
		if err != nil {
			t.Fatalf("core has no %s (op %s): %v", key, ops[key].ID, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: put SHA-256 %x, the core stores %x", key, sha256.Sum256(data), sha256.Sum256(got))
		}
	}
	id := ops[victim].ID
	select {
	case d := <-drops:
		if d.ID != id || d.Reason != outbox.ReasonDamaged {
			t.Errorf("drop %+v, want op %s for reason damaged", d, id)
		}
	case <-time.After(10 * time.Second):
		t.Error("no drop reported for the damaged op within 10 s")
	}
	st := mustStatus(t, a)
	if st.Quarantined.Ops != 1 || !strings.Contains(st.Damage, "1 op quarantined") || !strings.Contains(st.Damage, victim) ||
		!strings.Contains(st.Damage, "edge-sync ctl transport.outbox.verify") {
		t.Errorf("status: quarantined %+v, damage %q", st.Quarantined, st.Damage)
	}
	if n, ok := value(scrape(t, a.MetricsHandler()), "edge_sync_outbox_quarantined_ops", nil); !ok || n != 1 {
		t.Errorf("edge_sync_outbox_quarantined_ops = %v (present %v), want 1", n, ok)
	}
	if n := strings.Count(logs.String(), id.String()); n != 1 || !strings.Contains(logs.String(), "key="+victim) {
		t.Errorf("the damaged op %s is named in %d log lines, want 1 with its key:\n%s", id, n, logs.String())
	}
	r, err := a.VerifyOutbox(context.Background())
	if err != nil || len(r.Damaged) != 0 || len(r.Quarantined) != 1 || r.Quarantined[0].Key != victim || r.OK() {
		t.Errorf("verify after the drain: %+v, %v", r, err)
	}
}

// TestDamagedPageHeaderRefusesToStart destroys the header of the bbolt
// page that holds the start of an op's payload: bbolt cannot read it, so
// the agent must not start on it, and must say so with ErrCorrupt rather
// than crash or send anything; the file stays as it was for salvage.
func TestDamagedPageHeaderRefusesToStart(t *testing.T) {
	p, c, cfg := siteCore(t)
	payloads := map[string][]byte{}
	for i := range 5 {
		payloads[fmt.Sprintf("obj/%d", i)] = testutil.RandomBytes(uint64(i), 64<<10)
	}
	fillStopped(t, p, cfg, payloads)
	testutil.DamagePageHeader(t, cfg.OutboxPath(), payloads["obj/3"][:64], 4096)
	file, err := os.ReadFile(cfg.OutboxPath())
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Options{TLS: p.ClientTLS(t, "127.0.0.1"), Logger: testutil.Logger(t, "agent")})
	if err == nil {
		a.Close()
		t.Fatal("the agent started on an outbox whose page bbolt cannot read")
	}
	if !errors.Is(err, outbox.ErrCorrupt) || !strings.Contains(err.Error(), cfg.OutboxPath()) {
		t.Fatalf("New: %v; want ErrCorrupt naming the file", err)
	}
	if after, _ := os.ReadFile(cfg.OutboxPath()); !bytes.Equal(after, file) {
		t.Fatal("the refused outbox file was changed")
	}
	if n := c.Server.Stats().OpsApplied; n != 0 {
		t.Fatalf("the core applied %d ops", n)
	}
	r, err := outbox.VerifyFile(cfg.OutboxPath(), outbox.Options{})
	if err != nil || r.Ops != 4 || len(r.Damaged) != 1 || r.Damaged[0].Key != "obj/3" {
		t.Fatalf("offline verify of the refused file: %+v, %v", r, err)
	}
}

// TestCoreRefusesBytesThatDoNotMatchTheProducersHash changes the hash in
// one op's record (and reseals the record's checksum, so the outbox sees
// nothing wrong): as if the bytes had changed after the producer handed
// them over and before they were checksummed. The core checks the bytes
// it stores against the hash at commit and refuses them; the agent then
// checks the op from its disk, quarantines it and does not send it again.
func TestCoreRefusesBytesThatDoNotMatchTheProducersHash(t *testing.T) {
	p, c, cfg := siteCore(t)
	payloads := map[string][]byte{"good/1": testutil.RandomBytes(1, 3000), "bad": testutil.RandomBytes(2, 3000), "good/2": testutil.RandomBytes(3, 300<<10)}
	ops := fillStopped(t, p, cfg, payloads)
	bad := ops["bad"].ID
	db, err := bolt.Open(cfg.OutboxPath(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		// Record version 2 (outbox/op.go): the payload's SHA-256 at
		// [28:60], a CRC-32C of the op ID and the record at the end.
		b := tx.Bucket([]byte("ops"))
		rec := bytes.Clone(b.Get(bad[:]))
		if rec[0] != 2 {
			return fmt.Errorf("record version %d, want 2", rec[0])
		}
		other := sha256.Sum256([]byte("not what the producer gave"))
		copy(rec[28:60], other[:])
		body := rec[:len(rec)-4]
		sum := crc32.Update(crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), bad[:]), crc32.MakeTable(crc32.Castagnoli), body)
		binary.BigEndian.PutUint32(rec[len(body):], sum)
		return b.Put(bad[:], rec)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, p, cfg, Options{})
	testutil.WaitFor(t, 30*time.Second, "the outbox to drain", func() bool { return outboxEmpty(a) })
	for key, data := range payloads {
		got, err := c.Data("site-1", key)
		if key == "bad" {
			if err == nil {
				t.Errorf("the core stored bytes that do not hash to the op's hash")
			}
			continue
		}
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %v, or the core holds other bytes", key, err)
		}
	}
	q, err := a.Outbox().Quarantined()
	if err != nil || len(q) != 1 || q[0].ID != bad || !strings.Contains(q[0].Reason, "its record says") {
		t.Fatalf("quarantine: %+v, %v", q, err)
	}
	if n := a.Stats()[0].Nacks["hash-mismatch"]; n != 1 {
		t.Errorf("the core refused the op %d times, want once (it must not be sent again)", n)
	}
}
