package soak

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/pki"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// BenchmarkIdleCPU measures what connected, idle agents cost: real
// `edge-sync core` and `edge-sync agent` processes on loopback, default
// config, nothing enqueued. After the agents connected and the link went
// idle (idleSettle), the CPU time (utime+stime from /proc/PID/stat) each
// process uses over the measuring time is reported in % of one core:
// idle-cpu-pct-agent (mean of the agents) and idle-cpu-pct-core (the
// core's, per agent). Beside them, in the same run and at the same time,
// the same measure with the link monitor sampling an idle link as it
// samples a busy one (the old schedule: monitor { idle_sample_interval =
// "250ms"  idle_probe_interval = "5s" }), as old-*, and the ratios.
//
//	EDGESYNC_IDLE_SECONDS=60 go test -run '^$' -bench BenchmarkIdleCPU -benchtime 1x ./internal/soak
//
// EDGESYNC_IDLE_SECONDS is the measuring time (default 20 s),
// EDGESYNC_IDLE_AGENTS the agents per core (default 4).
// EDGESYNC_IDLE_BASE names a baseline edge-sync binary (say, main's:
// `go build -o /tmp/edge-sync-base ./cmd/edge-sync` in its worktree): a
// third set-up runs it with the default config, measured over the same
// time, reported as base-* and *-ratio-vs-base.
// EDGESYNC_IDLE_BURN=N loads the machine with N goroutines that spin in
// the benchmark's process while the agents settle and are measured, on
// all set-ups alike (the load of a busy machine, on which late pongs
// used to wake idle links).
func BenchmarkIdleCPU(b *testing.B) {
	d := time.Duration(envInt(b, "EDGESYNC_IDLE_SECONDS", 20)) * time.Second
	n := envInt(b, "EDGESYNC_IDLE_AGENTS", 4)
	baseBin := os.Getenv("EDGESYNC_IDLE_BASE")
	burn := 0
	if os.Getenv("EDGESYNC_IDLE_BURN") != "" {
		burn = envInt(b, "EDGESYNC_IDLE_BURN", 0)
	}
	for range b.N {
		// The set-ups idle side by side and are measured over the same
		// time, so that the machine's noise falls on all alike.
		cur := startIdle(b, "", n, "")
		old := startIdle(b, "", n, oldIdleSampling)
		var base *idleSetup
		if baseBin != "" {
			base = startIdle(b, baseBin, n, "")
		}
		stopBurn := burnCPU(burn)
		b.Cleanup(stopBurn)    // on a failure before the end
		time.Sleep(idleSettle) // not synchronisation: the agents go idle
		cur.begin(b)
		old.begin(b)
		if base != nil {
			base.begin(b)
		}
		time.Sleep(d) // not synchronisation: the idle time measured
		c, o := cur.end(b), old.end(b)
		if base != nil {
			bf := base.end(b)
			b.ReportMetric(bf.agent, "base-idle-cpu-pct-agent")
			b.ReportMetric(bf.core, "base-idle-cpu-pct-core")
			b.ReportMetric(c.agent/max(bf.agent, 1e-9), "agent-ratio-vs-base")
			b.ReportMetric(c.core/max(bf.core, 1e-9), "core-ratio-vs-base")
			if idleDebug {
				b.ReportMetric(float64(base.busyAgain()), "base-busy-again")
			}
		}
		b.ReportMetric(loadAvg(), "load-avg-1m")
		stopBurn()
		if idleDebug {
			b.ReportMetric(float64(cur.busyAgain()), "busy-again")
		}
		b.ReportMetric(c.agent, "idle-cpu-pct-agent")
		b.ReportMetric(c.core, "idle-cpu-pct-core")
		b.ReportMetric(o.agent, "old-idle-cpu-pct-agent")
		b.ReportMetric(o.core, "old-idle-cpu-pct-core")
		b.ReportMetric(c.agent/max(o.agent, 1e-9), "agent-ratio-vs-old")
		b.ReportMetric(c.core/max(o.core, 1e-9), "core-ratio-vs-old")
	}
}

// oldIdleSampling is the monitor block that samples an idle link at the
// busy rates: the schedule before idle sampling.
const oldIdleSampling = `
  monitor {
    idle_sample_interval = "250ms"
    idle_probe_interval  = "5s"
  }`

// idleSettle is how long the agents run connected before the measuring
// starts: past the monitor's idle_after (docs/linkmon.md, "Idle links"),
// and the first probes.
const idleSettle = 20 * time.Second

type idleFigures struct {
	agent, core float64 // % of one core: an agent's (mean), the core's per agent
}

// idleSetup is a core and its agents, connected and left alone.
type idleSetup struct {
	procs  []*proc // the core, then the agents
	before []time.Duration
	start  time.Time
}

// burnCPU starts n goroutines that spin until the returned func stops
// them (and waits for them).
func burnCPU(n int) (stop func()) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range n {
		wg.Go(func() {
			for x := uint64(1); ; x = x*6364136223846793005 + 1 {
				if x&0xffff == 0 {
					select {
					case <-done:
						return
					default:
					}
				}
			}
		})
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			close(done)
			wg.Wait()
		})
	}
}

// loadAvg is the machine's 1-minute load average (0 when unknown).
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64) // 0 on a format not understood
	return v
}

// startIdle starts a core and n agents (endpointExtra goes in their
// endpoint block) of the edge-sync binary bin ("": this tree's) and waits
// until every agent is connected.
func startIdle(tb testing.TB, bin string, n int, endpointExtra string) *idleSetup {
	tb.Helper()
	if bin == "" {
		bin = edgeSync(tb)
	}
	dir := tb.TempDir()
	p := testutil.NewPKI(tb, "idle-0")
	// A port free a moment ago may be taken meanwhile (other tests on
	// the machine): a core that cannot bind it gets another.
	var addr string
	var c *proc
	for try := 0; c == nil; try++ {
		addr = testutil.FreeUDPAddr(tb)
		pr := startBin(tb, bin, "core", "", "core", "--config", coreConfig(tb, p, dir, addr))
		testutil.Poll(30*time.Second, func() bool { return pr.exited() || strings.Contains(pr.out.String(), "listening") })
		switch {
		case !pr.exited():
			c = pr
		case try < 3 && strings.Contains(pr.out.String(), "address already in use"):
		default:
			tb.Fatalf("core did not start:\n%s", tail(pr.out, 40))
		}
	}
	tb.Cleanup(c.kill)
	s := &idleSetup{procs: []*proc{c}}
	for i := range n {
		name := fmt.Sprintf("idle-%d", i)
		certFile, keyFile := p.AgentCert, p.AgentKey
		if i > 0 {
			cert, err := p.CA.Issue(name, false, nil, time.Hour)
			if err != nil {
				tb.Fatal(err)
			}
			certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
			if err := pki.WriteCert(cert, certFile, keyFile, false); err != nil {
				tb.Fatal(err)
			}
		}
		cfg := filepath.Join(dir, name+".hcl")
		agentHCL{Name: name, DataDir: filepath.Join(dir, name), CA: p.CAFile, Cert: certFile, Key: keyFile,
			Addr: addr, EndpointExtra: endpointExtra}.write(tb, cfg)
		args := []string{"agent", "--config", cfg}
		if idleDebug {
			args = append(args, "--log-level", "debug")
		}
		a := startBin(tb, bin, name, "", args...)
		tb.Cleanup(a.kill)
		a.waitLog(tb, 30*time.Second, "connected")
		s.procs = append(s.procs, a)
	}
	return s
}

// idleDebug (EDGE_SYNC_IDLE_DEBUG=1) runs the agents at log level debug
// and reports busy-again: how often the agents' links left the idle
// schedule while measured (no traffic, so only a sample that showed a
// change did it). The debug log costs CPU of its own.
var idleDebug = os.Getenv("EDGE_SYNC_IDLE_DEBUG") == "1"

// busyAgain counts the agents' "link sampling: idle=false" lines.
func (s *idleSetup) busyAgain() int {
	n := 0
	for _, pr := range s.procs[1:] {
		n += strings.Count(pr.out.String(), "link sampling: endpoint=core idle=false")
	}
	return n
}

// begin starts measuring.
func (s *idleSetup) begin(tb testing.TB) {
	s.before = make([]time.Duration, len(s.procs))
	for i, pr := range s.procs {
		s.before[i] = cpuTime(tb, pr)
	}
	s.start = time.Now()
}

// end returns the CPU use since begin.
func (s *idleSetup) end(tb testing.TB) idleFigures {
	wall := time.Since(s.start)
	n := float64(len(s.procs) - 1)
	var f idleFigures
	for i, pr := range s.procs {
		if pr.exited() {
			tb.Fatalf("%s exited while idle:\n%s", pr.name, tail(pr.out, 40))
		}
		pct := 100 * float64(cpuTime(tb, pr)-s.before[i]) / float64(wall)
		if i == 0 {
			f.core = pct / n
		} else {
			f.agent += pct / n
		}
	}
	return f
}

// cpuTime returns the CPU time (user and system) the process used so far,
// from /proc/PID/stat.
func cpuTime(tb testing.TB, p *proc) time.Duration {
	tb.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		tb.Fatal(err)
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields counted start after its closing one.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		tb.Fatalf("/proc/%d/stat: %q", p.cmd.Process.Pid, s)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		tb.Fatalf("/proc/%d/stat: utime %q, stime %q", p.cmd.Process.Pid, f[11], f[12])
	}
	const clkTck = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / clkTck
}

func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}
