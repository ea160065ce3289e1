package jsstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/linksim"
	"github.com/edge-sync/edge-sync/outbox"
)

// These tests run real cores (core.Server on a JetStream Store) and a
// real agent over QUIC on loopback, shaped by linksim so that large ops
// take seconds, and break things mid-transfer: the agent fails over to
// another core, a NATS node dies, a core process is killed. Each ends
// with every op the agent accepted stored exactly once, byte-identical.

// fleetOp is an op the test agent accepted.
type fleetOp struct {
	id   edgesync.OpID
	kind edgesync.OpKind
	key  string
	data []byte
}

// fleet is one agent's ops sent into one JetStream through any cores.
type fleet struct {
	t      *testing.T
	pki    *testutil.PKI
	urls   []string
	prefix string
	dir    string // the agent's data directory, kept across restarts
	ops    []fleetOp
}

func newFleet(t *testing.T, urls []string) *fleet {
	return &fleet{t: t, pki: testutil.NewPKI(t, "ship-7"), urls: urls, prefix: fmt.Sprintf("t%d", prefixes.Add(1)), dir: t.TempDir()}
}

// newFleetOnOwnServer is a fleet on a NATS server of its own (one node,
// embedded), which stops when t ends.
func newFleetOnOwnServer(t *testing.T) *fleet {
	t.Helper()
	return newFleet(t, []string{natstest.Run(t).URL()})
}

// storeConfig is the cores' store; replicas as the JetStream allows.
func (f *fleet) storeConfig(replicas int) Config {
	return Config{URLs: f.urls, Prefix: f.prefix, Replicas: replicas, Timeout: 5 * time.Second}
}

// testCore is a core server in this process.
type testCore struct {
	srv   *core.Server
	store *Store
	addr  string
	done  chan error
	pc    net.PacketConn
	once  sync.Once
}

func (f *fleet) startCore(name string, replicas int) *testCore {
	f.t.Helper()
	return f.startCoreAt(name, replicas, "127.0.0.1:0")
}

// startCoreAt starts a core listening on addr (host:port).
func (f *fleet) startCoreAt(name string, replicas int, addr string) *testCore {
	t := f.t
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.storeConfig(replicas)
	cfg.Name = name
	store, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := core.NewServer(core.ServerConfig{Name: name, TLS: f.pki.ServerTLS(t), Store: store, Logger: testutil.Logger(t, name)})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCore{srv: srv, store: store, addr: pc.LocalAddr().String(), done: make(chan error, 1), pc: pc}
	go func() { c.done <- srv.Serve(context.Background(), pc) }()
	t.Cleanup(func() { c.stop(t) })
	return c
}

func (c *testCore) stop(t *testing.T) {
	c.once.Do(func() {
		c.srv.Close()
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			t.Error("core server did not stop within 15 s")
		}
		c.pc.Close()
		if err := c.store.Close(); err != nil {
			t.Logf("close store: %v", err)
		}
	})
}

// testChunk bounds the chunk size of the test agent's transfers: a
// resumed op goes on from the chunk boundary at or below what the core
// holds, so it re-sends at most one chunk.
const testChunk = 128 << 10

// startAgent starts the agent with its one endpoint at coreAddr, on a
// 10 Mbit/s uplink; it keeps its outbox in f.dir across restarts. Every
// link class encodes alike, in chunks of at most testChunk, and the class
// is pinned to broadband: what the agent measures on a loaded machine
// (a "satellite" under -race) neither pauses a transfer for new
// parameters nor moves its chunk boundaries beyond testChunk.
func (f *fleet) startAgent(coreAddr string) *agent.Agent {
	f.t.Helper()
	return f.startAgentWith(config.Endpoint{Address: coreAddr})
}

// startAgentWith starts the agent with ep's addresses and fail_back.
func (f *fleet) startAgentWith(ep config.Endpoint) *agent.Agent {
	t := f.t
	t.Helper()
	cfg := config.DefaultAgent()
	cfg.Name = f.pki.AgentName
	cfg.DataDir = f.dir
	cfg.TLS = config.TLS{CA: f.pki.CAFile, Cert: f.pki.AgentCert, Key: f.pki.AgentKey}
	fast := 50 * time.Millisecond
	compress := true
	for _, c := range edgesync.LinkClasses() {
		cfg.Profiles[c] = config.Profile{Mode: edgesync.SyncFullZstd, Compression: &compress, Level: "fastest", ChunkSize: testChunk, Interval: &fast}
	}
	cfg.Control.Socket = "off"
	ep.Name, ep.ServerName, ep.Monitor = "core", "127.0.0.1", cfg.Monitor
	cfg.Endpoints = []config.Endpoint{ep}
	a, err := agent.New(cfg, agent.Options{TLS: f.pki.ClientTLS(t, "127.0.0.1"), Logger: testutil.Logger(t, "agent"),
		ListenPacket: func() (net.PacketConn, error) {
			pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return nil, err
			}
			return linksim.Wrap(pc, linksim.Broadband())
		}})
	if err != nil {
		t.Fatal(err)
	}
	broadband := edgesync.Broadband
	if err := a.Switch("core", linkmon.Pin{Class: &broadband}); err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// enqueue hands the agent a mix of ops: small events, versions of a few
// keys, and two large ops that take seconds on the link.
func (f *fleet) enqueue(a *agent.Agent, round int) {
	t := f.t
	t.Helper()
	add := func(kind edgesync.OpKind, key string, size int, p edgesync.Priority) {
		data := storetest.Payload(uint64(round*1000+len(f.ops)), size)
		op, err := a.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: key, Kind: kind, Priority: p, Payload: bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
		f.ops = append(f.ops, fleetOp{id: op.ID, kind: kind, key: key, data: data})
	}
	add(edgesync.EventOp, "bulk/log", 3<<20, edgesync.Background)
	add(edgesync.StateOp, "bulk/image", 2<<20, edgesync.Background)
	for i := range 16 {
		if i%2 == 0 {
			add(edgesync.EventOp, "alarms", 200+i*50, edgesync.High)
		} else {
			add(edgesync.StateOp, fmt.Sprintf("sensors/%d", i%3), 1000+i*100, edgesync.Normal)
		}
	}
}

// reader opens the store read-only, as an application would.
func (f *fleet) reader() *Store {
	f.t.Helper()
	cfg := f.storeConfig(1)
	cfg.ReadOnly = true
	return openWith(f.t, cfg)
}

// waitTransfer waits until a partial op of the agent's is held in
// JetStream with at least min bytes, and returns it.
func (f *fleet) waitTransfer(r *Store, min int64) core.PartialInfo {
	f.t.Helper()
	var found core.PartialInfo
	testutil.WaitFor(f.t, 60*time.Second, fmt.Sprintf("a partial op with %d bytes held in JetStream", min), func() bool {
		ps, err := r.Partials(f.pki.AgentName)
		for _, p := range ps {
			if err == nil && p.Held >= min && p.Held < p.Header.Size {
				found = p
				return true
			}
		}
		return false
	})
	return found
}

// midTransfer enqueues a large op on ag and waits until the store holds
// part of it; it returns that part and the bytes ag has not had
// acknowledged, for checkResumed after a failover.
func (f *fleet) midTransfer(ag *agent.Agent) (core.PartialInfo, int64) {
	f.t.Helper()
	f.enqueue(ag, 1)
	p := f.waitTransfer(f.reader(), 512<<10)
	st, err := ag.Outbox().Stats()
	if err != nil {
		f.t.Fatal(err)
	}
	return p, st.Total.Bytes
}

// checkResumed checks a failover from core a to core b in the middle of
// the op midTransfer returned (p, with unacked bytes not acknowledged):
// a applied something before it, and b did not receive again what a had
// stored of the op: at most the chunk the resume point falls in
// (testChunk), and the encoding's few bytes per chunk. p.Held was sampled
// before the failover; what b's resume answer says is at least that.
func (f *fleet) checkResumed(a, b *testCore, p core.PartialInfo, unacked int64) {
	f.t.Helper()
	slack := int64(testChunk) + unacked/256
	if got := b.srv.Stats().BytesReceived; got > unacked-p.Held+slack {
		f.t.Errorf("core B received %d bytes of the %d not acknowledged; %d of op %s were held at the failover: not resumed?",
			got, unacked, p.Held, p.Header.OpID)
	}
	if a.srv.Stats().OpsApplied == 0 {
		f.t.Error("core A applied nothing before the failover")
	}
}

// waitDrained waits until the agent's outbox is empty: everything
// acknowledged.
func (f *fleet) waitDrained(a *agent.Agent) {
	f.t.Helper()
	testutil.WaitFor(f.t, 3*time.Minute, "the agent's outbox to empty", func() bool {
		st, err := a.Outbox().Stats()
		return err == nil && st.Total.Ops == 0
	})
}

// verify checks that every op the agent accepted is stored exactly once,
// byte-identical: each event once, each key at its newest op.
func (f *fleet) verify() {
	t := f.t
	t.Helper()
	r := f.reader()
	agentName := f.pki.AgentName
	evs, err := r.Events(agentName, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[edgesync.OpID]core.Event{}
	count := map[edgesync.OpID]int{}
	for _, e := range evs {
		count[e.OpID]++
		byID[e.OpID] = e
	}
	newest := map[string]fleetOp{}
	events := 0
	for _, op := range f.ops {
		if op.kind == edgesync.StateOp {
			if cur, ok := newest[op.key]; !ok || cur.id.Compare(op.id) < 0 {
				newest[op.key] = op
			}
			continue
		}
		events++
		if count[op.id] != 1 {
			t.Errorf("event %s (%d bytes) stored %d times", op.id, len(op.data), count[op.id])
			continue
		}
		_, o, err := r.EventData(agentName, byID[op.id].Seq)
		if err != nil {
			t.Fatalf("event %s: %v", op.id, err)
		}
		if got := readObject(t, o); !bytes.Equal(got, op.data) {
			t.Errorf("event %s: %d bytes stored differ from the %d sent", op.id, len(got), len(op.data))
		}
	}
	if len(evs) != events {
		t.Errorf("%d events stored for %d sent", len(evs), events)
	}
	for key, op := range newest {
		v, o, err := r.Current(agentName, key)
		if err != nil {
			t.Fatalf("key %q: %v", key, err)
		}
		if got := readObject(t, o); v.OpID != op.id || !bytes.Equal(got, op.data) {
			t.Errorf("key %q holds op %s (%d bytes), want %s (%d bytes)", key, v.OpID, len(got), op.id, len(op.data))
		}
	}
	ps, err := r.Partials(agentName)
	if err != nil || len(ps) != 0 {
		t.Errorf("partial ops left: %+v, %v", ps, err)
	}
}

func readObject(t *testing.T, o *core.Object) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := b.ReadFrom(o); err != nil {
		t.Fatalf("read: %v", err)
	}
	return b.Bytes()
}

// TestTwoCoresAgentFailsOver: two cores on one JetStream; the agent sends
// to the first, and mid-transfer of a large op moves to the second (its
// process restarted with the second core's address, as a failover does),
// which resumes the op where the shared store says instead of from zero.
func TestTwoCoresAgentFailsOver(t *testing.T) {
	f := newFleetOnOwnServer(t)
	a1, b1 := f.startCore("core-a", 1), f.startCore("core-b", 1)
	ag := f.startAgent(a1.addr)
	p, unacked := f.midTransfer(ag)
	if err := ag.Close(); err != nil {
		t.Fatal(err)
	}
	ag = f.startAgent(b1.addr)
	f.waitDrained(ag)
	f.verify()
	f.checkResumed(a1, b1, p, unacked)
}

// TestNATSNodeKilled: a 3-node JetStream cluster, every bucket and stream
// with 3 replicas; the node the core is connected to is shut down in the
// middle of a large transfer. The core reconnects to another node, the
// agent resends what failed, and nothing is lost or stored twice.
func TestNATSNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	cl := natstest.RunCluster(t, 3)
	f := newFleet(t, cl.URLs())
	c := f.startCore("core-a", 3)
	ag := f.startAgent(c.addr)
	f.enqueue(ag, 1)
	f.waitTransfer(f.reader(), 512<<10)
	connected := c.store.nc.ConnectedUrl()
	killed := -1
	for i, n := range cl.Nodes {
		if n != nil && n.URL() == connected {
			killed = i
		}
	}
	if killed < 0 {
		t.Fatalf("the core is connected to %s, which is no node of the cluster", connected)
	}
	cl.Stop(killed)
	f.enqueue(ag, 2) // more ops while the cluster elects new leaders
	f.waitDrained(ag)
	// Every op is acknowledged, so durable; a read may still meet the
	// election ("no responders available for request": CI failed so once
	// the agent drained its ops faster, packed): reads are retried by
	// their callers, as an application's would be.
	testutil.WaitFor(t, 30*time.Second, "the cluster to answer reads after losing a node", func() bool {
		_, err := f.reader().Events(f.pki.AgentName, 0, 0)
		return err == nil
	})
	f.verify()
}

// The SIGKILL test runs this test binary again as a core process
// (coreChildEnv set), so that it can kill a real core mid-transfer.

const coreChildEnv = "EDGE_SYNC_JS_CORE_CHILD"

type coreChildPlan struct {
	URLs   []string `json:"urls"`
	Prefix string   `json:"prefix"`
	Listen string   `json:"listen"`
	CA     string   `json:"ca"`
	Cert   string   `json:"cert"`
	Key    string   `json:"key"`
	Step   string   `json:"step,omitempty"` // kill itself at this commit step
	Nth    int      `json:"nth,omitempty"`
	// Inherited: the core serves on its descriptor 3, sock, a socket at
	// Listen the test holds, so that a core started again after a
	// SIGKILL needs no free port (another job could take it meanwhile).
	Inherited bool `json:"inherited,omitempty"`
	sock      *os.File
}

func coreChild() {
	var p coreChildPlan
	if err := json.Unmarshal([]byte(os.Getenv(coreChildEnv)), &p); err != nil {
		fmt.Println("ERROR", err)
		os.Exit(3)
	}
	if p.Step != "" {
		killAt(p.Step, p.Nth)
	}
	fail := func(err error) {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	store, err := Open(context.Background(), Config{URLs: p.URLs, Prefix: p.Prefix, Timeout: 5 * time.Second})
	if err != nil {
		fail(err)
	}
	tlsConf, err := pki.ServerTLSConfig(p.CA, p.Cert, p.Key)
	if err != nil {
		fail(err)
	}
	srv, err := core.NewServer(core.ServerConfig{Name: "core-child", TLS: tlsConf, Store: store})
	if err != nil {
		fail(err)
	}
	var pc net.PacketConn
	if p.Inherited {
		f := os.NewFile(3, "core socket")
		if pc, err = net.FilePacketConn(f); err != nil {
			fail(err)
		}
		f.Close() // pc holds its own descriptor
	} else {
		addr, err := net.ResolveUDPAddr("udp", p.Listen)
		if err != nil {
			fail(err)
		}
		if pc, err = net.ListenUDP("udp", addr); err != nil {
			fail(err)
		}
	}
	fmt.Println("READY")
	fail(srv.Serve(context.Background(), pc)) // until SIGKILL
}

// childCore is a core process.
type childCore struct {
	cmd  *exec.Cmd
	out  *testutil.Buffer
	done chan error
}

func (f *fleet) startChild(p coreChildPlan) *childCore {
	t := f.t
	t.Helper()
	p.URLs, p.Prefix, p.CA, p.Cert, p.Key = f.urls, f.prefix, f.pki.CAFile, f.pki.CoreCert, f.pki.CoreKey
	p.Inherited = p.sock != nil
	env, _ := json.Marshal(p)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), coreChildEnv+"="+string(env))
	if p.sock != nil {
		cmd.ExtraFiles = []*os.File{p.sock}
	}
	out := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childCore{cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.done
	})
	testutil.WaitFor(t, 30*time.Second, "the core process to start", func() bool {
		return strings.Contains(out.String(), "READY") || strings.Contains(out.String(), "ERROR")
	})
	if strings.Contains(out.String(), "ERROR") {
		t.Fatalf("core process: %s", out.String())
	}
	return c
}

// waitKilled waits for the core process to die by SIGKILL.
func (c *childCore) waitKilled(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err // for the cleanup
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("core process ended with %v, not SIGKILL", err)
		}
	case <-time.After(within):
		t.Fatalf("core process still running after %v", within)
	}
}

// TestCoreSIGKILLed: a core process on JetStream is killed with SIGKILL,
// once in the middle of a large transfer and once between two writes of a
// commit (after the applied entry, before the effect); a new core process
// on the same address takes over, the agent reconnects by itself and
// resends what was not acknowledged, and every op is stored exactly once.
func TestCoreSIGKILLed(t *testing.T) {
	if testing.Short() {
		t.Skip("runs core processes")
	}
	srv := natstest.Run(t)
	for _, tc := range []struct {
		name string
		step string
		nth  int
	}{{"mid-transfer", "", 0}, {"mid-commit", "applied-created", 4}, {"after-effect", "staged-visible", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFleet(t, []string{srv.URL()})
			pc := testutil.UDPSocket(t) // the restarted core's too
			listen, sock := pc.LocalAddr().String(), testutil.UDPSocketFile(t, pc)
			c := f.startChild(coreChildPlan{Listen: listen, sock: sock, Step: tc.step, Nth: tc.nth})
			ag := f.startAgent(listen)
			f.enqueue(ag, 1)
			if tc.step == "" {
				f.waitTransfer(f.reader(), 512<<10)
				if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
			c.waitKilled(t, time.Minute)
			if tc.step != "" && !strings.Contains(c.out.String(), "KILLED "+tc.step) {
				t.Fatalf("core process died elsewhere than at %s", tc.step)
			}
			f.startChild(coreChildPlan{Listen: listen, sock: sock})
			// The agent would notice the dead connection only after QUIC's
			// idle timeout; its process restarts instead, as a failover does.
			if err := ag.Close(); err != nil {
				t.Fatal(err)
			}
			ag = f.startAgent(listen)
			f.waitDrained(ag)
			f.verify()
		})
	}
}

// TestAgentFailsOverBetweenAddresses: two cores on one JetStream, one
// agent whose endpoint lists both. Core A's server closes in the middle of
// a large transfer; the same agent process moves to core B, which resumes
// the op where the shared store says, and every op arrives exactly once.
// Then core A is back on its address: the agent moves back to it within
// fail_back and sends what comes next there.
func TestAgentFailsOverBetweenAddresses(t *testing.T) {
	f := newFleetOnOwnServer(t)
	a1, b1 := f.startCore("core-a", 1), f.startCore("core-b", 1)
	const failBack = time.Second
	ag := f.startAgentWith(config.Endpoint{Address: a1.addr, Addresses: []string{a1.addr, b1.addr}, FailBack: failBack})
	p, unacked := f.midTransfer(ag)
	a1.stop(t) // core A's server closes; the agent keeps running

	f.waitDrained(ag)
	f.verify()
	status := func() agent.LinkStatus {
		s, err := ag.Status("core")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := status(); s.Address != b1.addr || !strings.HasPrefix(s.AddressChoice.Reason, "failed over from "+a1.addr) {
		t.Errorf("after the failover the agent uses %s (%q), want %s, failed over from %s", s.Address, s.AddressChoice.Reason, b1.addr, a1.addr)
	}
	f.checkResumed(a1, b1, p, unacked)

	// Core A comes back on its address.
	a2 := f.startCoreAt("core-a", 1, a1.addr)
	testutil.WaitFor(t, 30*failBack+time.Minute, "the agent to move back to core A", func() bool {
		s := status()
		return s.Connected && s.Address == a1.addr
	})
	if s := status(); !strings.HasPrefix(s.AddressChoice.Reason, "back to the first address") || s.AddressChoice.Moves != 2 {
		t.Errorf("moved back with reason %q after %d moves, want back to the first address after 2", s.AddressChoice.Reason, s.AddressChoice.Moves)
	}
	f.enqueue(ag, 2)
	f.waitDrained(ag)
	f.verify()
	if a2.srv.Stats().OpsApplied == 0 {
		t.Error("core A, back, applied nothing of what came after")
	}
}
