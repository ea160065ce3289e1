package soak

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/core/admin"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

var (
	soakDuration = flag.Duration("soak.duration", 20*time.Second,
		"how long TestSoak's faults last; the long form is 20m (at least 100 kills)")
	soakSeed = flag.Uint64("soak.seed", 0, "seed of TestSoak's faults, producers and hostile client; 0 picks one (printed)")
)

// soakAgent is the agent's name (its certificate's).
const soakAgent = "site-1"

// TestSoak runs an agent and a core process with a linksim relay between
// them, for -soak.duration: the relay's class changes (fiber, broadband,
// LTE, DSL, satellite, very bad, outages), agent and core are SIGKILLed
// and restarted at random moments, a hostile client beside the agent
// attacks the core, and two producers put ops of every priority and kind
// (events and keyed state, 100 B to 3 MiB) through the control API,
// recording each accepted op's ID and SHA-256. Then the link is clean
// again and, once the agent has drained, every accepted op must be at the
// core exactly once and byte-identical, or superseded by a newer version
// of its key. The seed (printed) replays the schedule of faults and ops;
// the timing of processes does not replay exactly.
func TestSoak(t *testing.T) {
	seed := *soakSeed
	if seed == 0 {
		seed = rand.Uint64() >> 1
	}
	t.Logf("soak: seed %d (replay with -soak.seed=%d), faults for %v", seed, seed, *soakDuration)
	s := newSoak(t, seed)
	start := time.Now()
	s.run(*soakDuration)
	drained := s.drain(3*time.Minute + *soakDuration/10)
	r := s.verify()
	t.Logf("soak: %v of faults, drained in %v: %d kills (%d agent, %d core), %d link changes (%d outages), %d hostile rounds",
		*soakDuration, time.Since(start)-*soakDuration, s.agentKills+s.coreKills, s.agentKills, s.coreKills,
		s.linkChanges, s.outages, s.hostileRounds.Load())
	t.Logf("soak: ops accepted %d, delivered %d, superseded %d, lost %d, duplicated %d, corrupted %d (puts that failed %d, events at the core from failed puts %d); core peak RSS %d MiB",
		r.accepted, r.delivered, r.superseded, r.lost, r.duplicated, r.corrupted, s.putsFailed.Load(), r.unaccounted, s.peakRSS.Load()>>20)
	for _, p := range r.problems[:min(len(r.problems), 10)] {
		t.Log("soak: " + p)
	}
	if !drained || r.lost > 0 || r.duplicated > 0 || r.corrupted > 0 {
		t.Fatalf("soak (seed %d) failed: drained %v, %d lost, %d duplicated, %d corrupted", seed, drained, r.lost, r.duplicated, r.corrupted)
	}
	if r.accepted < 20 {
		t.Fatalf("only %d ops accepted: the soak tested too little", r.accepted)
	}
}

// soak is one run: the processes, the relay, and what was accepted.
type soak struct {
	t        *testing.T
	seed     uint64
	dir      string
	pki      *testutil.PKI
	coreAddr string
	coreSock *os.File
	coreCfg  string
	agentCfg string
	relay    *linksim.Relay
	intruder *tls.Config // the hostile client's identity
	// logDir keeps every process's debug log; removed when the test
	// passes, kept (and named) when it fails.
	logDir string

	mu    sync.Mutex
	core  *proc
	agent *proc

	acceptedMu sync.Mutex
	accepted   []acceptedOp

	agentKills, coreKills, linkChanges, outages int
	hostileRounds, putsFailed                   atomic.Int64
	peakRSS                                     atomic.Int64
}

// acceptedOp is an op the agent accepted: put answered with its ID.
type acceptedOp struct {
	id   edgesync.OpID
	kind edgesync.OpKind
	prio edgesync.Priority
	key  string
	sha  [32]byte
}

func newSoak(t *testing.T, seed uint64) *soak {
	s := &soak{t: t, seed: seed, dir: t.TempDir()}
	logDir, err := os.MkdirTemp("", "edge-sync-soak-logs-")
	if err != nil {
		t.Fatal(err)
	}
	s.logDir = logDir
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("soak: the processes' logs are kept in %s", logDir)
			return
		}
		os.RemoveAll(logDir)
	})
	s.pki = testutil.NewPKI(t, soakAgent)
	s.intruder = intruderTLS(t, s.pki, s.dir)
	// The core's socket is the test's, handed to each core process: the
	// core killed and started again keeps its port.
	sock := testutil.UDPSocket(t)
	s.coreSock = testutil.UDPSocketFile(t, sock)
	s.coreAddr = sock.LocalAddr().String()
	s.coreCfg = coreConfig(t, s.pki, s.dir, s.coreAddr)
	relay, err := linksim.NewRelay(linksim.RelayConfig{Target: s.coreAddr, Profile: linksim.Fiber(), Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	s.relay = relay
	t.Cleanup(func() { relay.Close() })
	s.agentCfg = filepath.Join(s.dir, "agent.hcl")
	// Ordinary data waits a class's interval between batches (up to 60 s
	// on satellite); the soak is about integrity, so every class sends
	// every second.
	agentHCL{Name: soakAgent, DataDir: filepath.Join(s.dir, "agent"), CA: s.pki.CAFile, Cert: s.pki.AgentCert, Key: s.pki.AgentKey,
		Addr: relay.Addr().String(), Extra: `profile "unknown" { interval = "1s" }
profile "mobile" { interval = "1s" }
profile "satellite" { interval = "1s" }
profile "broadband" { interval = "1s" }
`}.write(t, s.agentCfg)
	s.core = s.startCore()
	s.agent = s.startAgent()
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.core.kill()
		s.agent.kill()
	})
	return s
}

// intruderTLS issues a second agent certificate, "intruder", for the
// hostile client, so that its partial ops stay apart from the agent's.
func intruderTLS(t *testing.T, p *testutil.PKI, dir string) *tls.Config {
	cert, err := p.CA.Issue("intruder", false, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "intruder.pem"), filepath.Join(dir, "intruder-key.pem")
	if err := pki.WriteCert(cert, certFile, keyFile, false); err != nil {
		t.Fatal(err)
	}
	c, err := pki.ClientTLSConfig(p.CAFile, certFile, keyFile, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *soak) controlSocket() string { return filepath.Join(s.dir, "agent", "agent.sock") }

// startAgent starts the agent process and waits until its control API
// answers.
func (s *soak) startAgent() *proc {
	a := startProc(s.t, "agent", filepath.Join(s.logDir, "agent.log"), "agent", "--config", s.agentCfg, "--log-level", "debug")
	c := control.NewClient(s.controlSocket())
	defer c.Close()
	ok := testutil.Poll(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.Health(ctx)
		return err == nil || a.exited()
	})
	if !ok || a.exited() {
		s.t.Fatalf("agent not up within 30 s (exited: %v):\n%s", a.exited(), tail(a.out, 40))
	}
	return a
}

// run runs the producers, the hostile client and the faults for d.
func (s *soak) run(d time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var wg sync.WaitGroup
	for p := range 2 {
		wg.Go(func() { s.produce(ctx, p) })
	}
	wg.Go(func() { s.attack(ctx) })
	wg.Go(func() { s.sampleRSS(ctx) })
	s.faults(ctx, d)
	wg.Wait()
}

// faults changes the relay's class and kills and restarts agent and core
// until ctx ends. The first two kills are one of each, within the first
// 60 % of the run, so that even the short form kills both.
func (s *soak) faults(ctx context.Context, d time.Duration) {
	rnd := rand.New(rand.NewPCG(s.seed, 1))
	exp := func(mean time.Duration) time.Duration {
		return time.Duration(rnd.ExpFloat64()*float64(mean)) + 500*time.Millisecond
	}
	classes := []func() linksim.Profile{linksim.Fiber, linksim.Broadband, linksim.LTE, linksim.DSL,
		linksim.SatelliteGEO, linksim.SatelliteLEO, linksim.VeryBad, linksim.Outage}
	start := time.Now()
	firstKills := []bool{rnd.IntN(2) == 0}
	firstKills = append(firstKills, !firstKills[0])
	nextKill := start.Add(time.Duration(rnd.Float64() * 0.3 * float64(d)))
	nextLink := start.Add(exp(4 * time.Second))
	for {
		next := nextKill
		if nextLink.Before(next) {
			next = nextLink
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(next)): // the schedule's own time
		}
		now := time.Now()
		if !now.Before(nextLink) {
			p := classes[rnd.IntN(len(classes))]()
			if err := s.relay.SetProfile(p); err != nil {
				s.t.Errorf("relay profile %s: %v", p.Name, err)
			}
			s.linkChanges++
			if p.Name == "outage" {
				s.outages++
				nextLink = now.Add(2*time.Second + time.Duration(rnd.IntN(8000))*time.Millisecond)
			} else {
				nextLink = now.Add(exp(4 * time.Second))
			}
		}
		if !now.Before(nextKill) {
			killAgent := rnd.IntN(2) == 0
			if len(firstKills) > 0 {
				killAgent, firstKills = firstKills[0], firstKills[1:]
			}
			s.kill(killAgent)
			if len(firstKills) > 0 {
				nextKill = now.Add(time.Duration(rnd.Float64() * 0.3 * float64(d)))
			} else {
				nextKill = now.Add(exp(8 * time.Second))
			}
		}
	}
}

// kill SIGKILLs the agent or the core and starts it again.
func (s *soak) kill(agent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if agent {
		s.agentKills++
		s.agent.kill()
		s.agent = s.startAgent()
		return
	}
	s.coreKills++
	if _, hwm, err := s.core.memory(); err == nil {
		s.notePeak(hwm)
	}
	s.core.kill()
	s.core = s.startCore()
}

func (s *soak) startCore() *proc {
	return startCoreOn(s.t, s.coreSock, s.coreCfg, filepath.Join(s.logDir, "core.log"), "--log-level", "debug")
}

func (s *soak) notePeak(n int64) {
	for {
		cur := s.peakRSS.Load()
		if n <= cur || s.peakRSS.CompareAndSwap(cur, n) {
			return
		}
	}
}

// sampleRSS records the core's peak RSS until ctx ends (each restart
// starts a new high-water mark).
func (s *soak) sampleRSS(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		_, hwm, err := s.core.memory()
		s.mu.Unlock()
		if err == nil {
			s.notePeak(hwm)
		}
	}
}

// produce puts ops through the control API until ctx ends: every
// priority, events and keyed state, mostly small, some of a few MiB.
func (s *soak) produce(ctx context.Context, producer int) {
	rnd := rand.New(rand.NewPCG(s.seed, uint64(100+producer)))
	c := control.NewClient(s.controlSocket())
	defer c.Close()
	for n := 0; ctx.Err() == nil; n++ {
		kind, key := edgesync.EventOp, fmt.Sprintf("events/%d/%d", producer, n)
		if rnd.IntN(2) == 0 {
			kind, key = edgesync.StateOp, fmt.Sprintf("state/%d", rnd.IntN(30))
		}
		prio := edgesync.Priority(rnd.IntN(edgesync.NumPriorities))
		payload := soakPayload(rnd)
		res, err := c.Upload(ctx, control.CmdSend, control.UploadParams{Endpoint: "core", Key: key,
			Priority: prio.String(), Kind: kind.String()}, bytes.NewReader(payload), int64(len(payload)))
		if err != nil {
			s.putsFailed.Add(1) // the agent is down, or died answering
			pause(ctx, 300*time.Millisecond)
			continue
		}
		s.acceptedMu.Lock()
		s.accepted = append(s.accepted, acceptedOp{id: res.ID, kind: kind, prio: prio, key: key, sha: sha256.Sum256(payload)})
		s.acceptedMu.Unlock()
		pause(ctx, time.Duration(100+rnd.IntN(400))*time.Millisecond)
	}
}

// soakPayload is 100 B to 4 KiB (70 %), to 256 KiB (25 %) or to 3 MiB,
// random bytes or compressible text in equal parts.
func soakPayload(rnd *rand.Rand) []byte {
	var n int
	switch r := rnd.IntN(100); {
	case r < 70:
		n = 100 + rnd.IntN(4<<10)
	case r < 95:
		n = 4<<10 + rnd.IntN(252<<10)
	default:
		n = 256<<10 + rnd.IntN(3<<20-256<<10)
	}
	b := make([]byte, n)
	if rnd.IntN(2) == 0 {
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	words := []string{"pump ", "pressure ", "4.2 bar ", "ok ", "valve-7 ", "open\n"}
	for i := 0; i < n; {
		i += copy(b[i:], words[rnd.IntN(len(words))])
	}
	return b
}

// attack runs the hostile client against the core (not through the relay)
// until ctx ends: rounds of one attack each, on a connection of its own.
func (s *soak) attack(ctx context.Context) {
	rnd := rand.New(rand.NewPCG(s.seed, 2))
	for round := 0; ctx.Err() == nil; round++ {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := hostile.Dial(dctx, s.coreAddr, s.intruder, 0)
		cancel()
		if err != nil {
			pause(ctx, time.Second) // the core is down
			continue
		}
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn := round % 200
		switch rnd.IntN(5) {
		case 0:
			_, err = hostile.DataFirst(actx, c, conn, 10+rnd.IntN(30), 64<<10)
		case 1:
			_, err = hostile.PartialData(actx, c, conn, 10+rnd.IntN(30), rnd.IntN(256<<10))
		case 2:
			_, err = hostile.HeadersOnly(actx, c, conn, 10+rnd.IntN(50))
		case 3:
			err = hostile.EarlyAnswers(actx, c, conn, 30+rnd.IntN(70))
		default:
			err = hostile.Resets(actx, c, conn, 5+rnd.IntN(15))
		}
		cancel()
		_ = err // a round cut by a core's death is still a round
		s.hostileRounds.Add(1)
		pause(ctx, time.Duration(500+rnd.IntN(2500))*time.Millisecond)
		c.Close()
	}
}

// pause waits d or until ctx ends: the pacing of producers and attacks.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// drain gives the link back its fiber profile and waits up to d until the
// core holds every accepted op (seen through its admin socket). It reports
// whether it did.
func (s *soak) drain(d time.Duration) bool {
	if err := s.relay.SetProfile(linksim.Fiber()); err != nil {
		s.t.Fatal(err)
	}
	a := admin.NewClient(filepath.Join(s.dir, "core", "core.sock"))
	defer a.Close()
	var missing int
	ok := testutil.PollEvery(d, time.Second, func() bool {
		missing = s.missing(a)
		return missing == 0
	})
	if !ok {
		s.t.Errorf("after %v the core still lacks %d accepted ops; the agent says %s", d, missing, s.agentState())
	}
	return ok
}

// missing counts accepted ops the running core does not show yet: events
// by op ID, keys at their newest accepted version or a newer one.
func (s *soak) missing(a *admin.Client) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seen := map[edgesync.OpID]bool{}
	for from := uint64(1); ; {
		evs, err := a.Events(ctx, soakAgent, from, admin.MaxLimit)
		if err != nil {
			return -1
		}
		for _, e := range evs {
			seen[e.OpID] = true
		}
		if len(evs) < admin.MaxLimit {
			break
		}
		from = evs[len(evs)-1].Seq + 1
	}
	keys, err := a.Keys(ctx, soakAgent, "", admin.MaxLimit)
	if err != nil {
		return -1
	}
	cur := map[string]edgesync.OpID{}
	for _, k := range keys {
		cur[k.Key] = k.OpID
	}
	n := 0
	for key, op := range s.newest() {
		if c, ok := cur[key]; !ok || c.Compare(op.id) < 0 {
			n++
		}
	}
	for _, op := range s.acceptedOps() {
		if op.kind == edgesync.EventOp && !seen[op.id] {
			n++
		}
	}
	return n
}

func (s *soak) acceptedOps() []acceptedOp {
	s.acceptedMu.Lock()
	defer s.acceptedMu.Unlock()
	return append([]acceptedOp(nil), s.accepted...)
}

// newest returns the newest accepted op of each key.
func (s *soak) newest() map[string]acceptedOp {
	out := map[string]acceptedOp{}
	for _, op := range s.acceptedOps() {
		if op.kind != edgesync.StateOp {
			continue
		}
		if n, ok := out[op.key]; !ok || n.id.Compare(op.id) < 0 {
			out[op.key] = op
		}
	}
	return out
}

// agentState is what the agent's control API says of its link and outbox,
// for a report.
func (s *soak) agentState() string {
	c := control.NewClient(s.controlSocket())
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var b strings.Builder
	for _, cmd := range []string{control.CmdStatus, control.CmdStats} {
		var resp any
		if err := c.Call(ctx, cmd, control.EndpointRequest{Endpoint: "core"}, &resp); err != nil {
			fmt.Fprintf(&b, "%s: %v; ", cmd, err)
			continue
		}
		j, _ := json.Marshal(resp)
		fmt.Fprintf(&b, "%s: %s; ", cmd, j)
	}
	return b.String()
}
