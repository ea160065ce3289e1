package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core/coretest"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// startAgent starts an agent with cfg and opts and p's client certificate;
// the test's cleanup closes it. (Tests above agent use agenttest.Start.)
func startAgent(t testing.TB, p *testutil.PKI, cfg config.Agent, opts Options) *Agent {
	t.Helper()
	opts.TLS = p.ClientTLS(t, "127.0.0.1")
	return startAgentOpts(t, cfg, opts)
}

// startAgentOpts starts an agent with cfg and opts as they are, with a
// logger into the test log unless opts has one.
func startAgentOpts(t testing.TB, cfg config.Agent, opts Options) *Agent {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testutil.Logger(t, "agent")
	}
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// newAgent makes an agent with cfg, opts and p's client certificate,
// not started; the test's cleanup closes it.
func newAgent(t testing.TB, p *testutil.PKI, cfg config.Agent, opts Options) *Agent {
	t.Helper()
	opts.TLS = p.ClientTLS(t, "127.0.0.1")
	opts.Logger = testutil.Logger(t, "agent")
	a, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// outboxEmpty reports whether the agent's outbox holds no ops.
func outboxEmpty(a *Agent) bool {
	st, err := a.Outbox().Stats()
	return err == nil && st.Total.Ops == 0
}

// mustStatus is a's status of its endpoint "core", failing t if it has
// none.
func mustStatus(t testing.TB, a *Agent) LinkStatus {
	t.Helper()
	st, err := a.Status("core")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func enqueue(t testing.TB, a *Agent, n outbox.NewOp) outbox.Op {
	t.Helper()
	op, err := a.Enqueue(context.Background(), n)
	if err != nil {
		t.Fatalf("enqueue %s: %v", n.Key, err)
	}
	return op
}

// shaped returns Options whose endpoint sockets go through a linksim link
// with profile p; the returned function gives the link, once the agent has
// opened it.
func shaped(p linksim.Profile) (Options, func() *linksim.Conn) {
	var mu sync.Mutex
	var last *linksim.Conn
	opts := Options{ListenPacket: func() (net.PacketConn, error) {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		c, err := linksim.Wrap(pc, p)
		if err != nil {
			pc.Close()
			return nil, err
		}
		mu.Lock()
		last = c
		mu.Unlock()
		return c, nil
	}}
	return opts, func() *linksim.Conn {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

// shapedAgent starts a core and an agent of site-1 with the default test
// configuration whose link to the core has profile prof; it returns the
// core, the agent and the link (once the agent has opened it). The test's
// cleanup closes both.
func shapedAgent(t testing.TB, prof linksim.Profile) (*coretest.Core, *Agent, func() *linksim.Conn) {
	t.Helper()
	p, c, cfg := siteCore(t)
	opts, link := shaped(prof)
	return c, startAgent(t, p, cfg, opts), link
}

// siteCore makes site-1's PKI and starts a core with it; cfg is the
// default test configuration of site-1's agent, its endpoint "core"
// at that core.
func siteCore(t testing.TB) (p *testutil.PKI, c *coretest.Core, cfg config.Agent) {
	t.Helper()
	p = testutil.NewPKI(t, "site-1")
	c = coretest.Start(t, p, nil)
	return p, c, coretest.AgentConfig(t, p, c.Addr.String())
}

// workloadOp is one op of a generated mixed workload and what the core must
// end up holding.
type workloadOp struct {
	key     string
	kind    edgesync.OpKind
	prio    edgesync.Priority
	payload []byte
}

// mixedWorkload makes n ops over all priorities, keyed and event, sizes
// from 100 B to maxSize (a few large ones), with repeated versions of keys.
func mixedWorkload(seed uint64, n int, maxSize int) []workloadOp {
	rnd := rand.New(rand.NewPCG(seed, seed+1))
	ops := make([]workloadOp, n)
	for i := range ops {
		size := 100 + rnd.IntN(16<<10)
		switch {
		case i == n/2:
			size = maxSize
		case i%100 == 7:
			size = 256<<10 + rnd.IntN(768<<10)
		}
		payload := make([]byte, size)
		for j := range payload {
			payload[j] = byte('a' + rnd.IntN(8)) // compressible, not trivially
		}
		op := workloadOp{prio: edgesync.Priority(rnd.IntN(edgesync.NumPriorities)), payload: payload}
		if i%3 == 0 {
			op.kind, op.key = edgesync.EventOp, fmt.Sprintf("events/%d", i)
		} else {
			op.kind, op.key = edgesync.StateOp, fmt.Sprintf("state/%d", rnd.IntN(50))
		}
		ops[i] = op
	}
	return ops
}

// checkDelivered verifies at the core: every event exactly once and byte
// for byte, every key at the newest version enqueued.
func checkDelivered(t testing.TB, c *coretest.Core, agentName string, enq []outbox.Op, ops []workloadOp) {
	t.Helper()
	events, seqs := coreEvents(t, c, agentName)
	newest := map[string][]byte{}
	for i, op := range ops {
		if op.kind == edgesync.StateOp {
			newest[op.key] = op.payload
			continue
		}
		id := enq[i].ID
		if n := events[id]; n != 1 {
			t.Fatalf("event %s (%s) stored %d times at the core, want exactly once", id, op.key, n)
		}
		got, err := eventData(c, agentName, seqs[id])
		if err != nil || !bytes.Equal(got, op.payload) {
			t.Fatalf("event %s (%s): core holds %d bytes that differ from the %d sent (%v)", id, op.key, len(got), len(op.payload), err)
		}
	}
	for key, want := range newest {
		got, err := c.Data(agentName, key)
		if err != nil {
			t.Fatalf("core has no %s: %v", key, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: core holds %d bytes, not the newest version (%d bytes)", key, len(got), len(want))
		}
	}
}

// coreEvents reads the agent's events at the core: how many times each
// op is stored, and the sequence number of its last copy.
func coreEvents(t testing.TB, c *coretest.Core, agentName string) (map[edgesync.OpID]int, map[edgesync.OpID]uint64) {
	t.Helper()
	counts := map[edgesync.OpID]int{}
	seqs := map[edgesync.OpID]uint64{}
	for from := uint64(1); ; {
		evs, err := c.Store.Events(agentName, from, 1000)
		if err != nil {
			t.Fatalf("core events: %v", err)
		}
		for _, e := range evs {
			counts[e.OpID]++
			seqs[e.OpID] = e.Seq
			from = e.Seq + 1
		}
		if len(evs) < 1000 {
			return counts, seqs
		}
	}
}

// eventData reads an event's payload at the core.
func eventData(c *coretest.Core, agentName string, seq uint64) ([]byte, error) {
	_, obj, err := c.Store.EventData(agentName, seq)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.NewSectionReader(obj, 0, obj.Size()))
}

// waitPartial waits up to limit, as testutil.WaitFor does, for the core to
// hold at least atLeast bytes of site-1's op id that it has not yet applied
// (a transfer under way); what names the wait.
func waitPartial(t testing.TB, c *coretest.Core, id edgesync.OpID, atLeast int64, limit time.Duration, what string) {
	t.Helper()
	testutil.WaitFor(t, limit, what, func() bool {
		n, ok := c.Store.PartialSize("site-1", id)
		return ok && n >= atLeast
	})
}

// wantAtCore fails t unless the core holds want, byte for byte, under
// site-1's key.
func wantAtCore(t testing.TB, c *coretest.Core, key string, want []byte) {
	t.Helper()
	got, err := c.Data("site-1", key)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: the core holds %d bytes (%v), sent %d, or they differ", key, len(got), err, len(want))
	}
}

// pinFast pins the endpoint "core" to class and makes that class send
// ordinary data every interval without summaries, so a test measures
// delivery through the link, not the class's batching period.
func pinFast(t testing.TB, a *Agent, class edgesync.LinkClass, interval time.Duration) {
	t.Helper()
	off := false
	if err := a.SetProfile(class, linkmon.Override{Interval: &interval, SummaryOnly: &off}); err != nil {
		t.Fatal(err)
	}
	if err := a.Switch("core", linkmon.Pin{Class: &class}); err != nil {
		t.Fatal(err)
	}
}
