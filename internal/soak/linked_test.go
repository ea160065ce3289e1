package soak

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/core/admin"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// linked is what the process benchmarks measure: real `edge-sync core` and
// `edge-sync agent` processes of one binary, the agent's one endpoint
// ("core") reached through a linksim relay, and clients of the core's
// admin API and the agent's control API. close stops everything, and the
// test's cleanup calls it too.
type linked struct {
	dir         string
	core, agent *proc
	relay       *linksim.Relay
	sock        string // the agent's control socket
	admin       *admin.Client
	ctl         *control.Client
	once        sync.Once
	stops       []func() // in the order started
}

// close stops what startLinked started, the last started first.
func (l *linked) close() {
	l.once.Do(func() {
		for i := len(l.stops) - 1; i >= 0; i-- {
			l.stops[i]()
		}
	})
}

// linkOpts are startLinked's options.
type linkOpts struct {
	// Extra goes after the agent's endpoint block: profiles, say
	// (intervalZero).
	Extra string
	// Logs, when not "", is a directory to which the processes' logs are
	// appended (core.log, agent.log); Level is their log level, "info"
	// when "".
	Logs, Level string
}

// intervalZero is the agent configuration that sets every class's batch
// interval to 0 (best effort), the tuned side of the process benchmarks.
func intervalZero() string {
	s := ""
	for _, c := range []string{"fiber", "broadband", "mobile", "satellite", "unknown"} {
		s += fmt.Sprintf("profile %q { interval = \"0s\" }\n", c)
	}
	return s
}

// startLinked starts a core, a relay shaped by prof and an agent, of the
// edge-sync binary bin, and waits until the agent's control socket
// answers.
func startLinked(tb testing.TB, bin string, prof linksim.Profile, o linkOpts) *linked {
	tb.Helper()
	l := &linked{dir: tb.TempDir()}
	tb.Cleanup(l.close)
	p := testutil.NewPKI(tb, "site-1")
	coreAddr := testutil.FreeUDPAddr(tb)
	coreLog, agentLog, level := "", "", o.Level
	if level == "" {
		level = "info"
	}
	if o.Logs != "" {
		coreLog, agentLog = filepath.Join(o.Logs, "core.log"), filepath.Join(o.Logs, "agent.log")
	}
	l.core = startBin(tb, bin, "core", coreLog, "core", "--config", coreConfig(tb, p, l.dir, coreAddr), "--log-level", level)
	l.stops = append(l.stops, l.core.kill)
	l.core.waitLog(tb, 30*time.Second, "listening")
	relay, err := linksim.NewRelay(linksim.RelayConfig{Target: coreAddr, Profile: prof})
	if err != nil {
		tb.Fatal(err)
	}
	l.relay = relay
	l.stops = append(l.stops, func() { _ = relay.Close() })
	cfg := filepath.Join(l.dir, "agent.hcl")
	agentHCL{Name: "site-1", DataDir: filepath.Join(l.dir, "agent"), CA: p.CAFile, Cert: p.AgentCert, Key: p.AgentKey,
		Addr: relay.Addr().String(), Extra: o.Extra}.write(tb, cfg)
	l.agent = startBin(tb, bin, "agent", agentLog, "agent", "--config", cfg, "--log-level", level)
	l.stops = append(l.stops, l.agent.kill)
	l.sock = filepath.Join(l.dir, "agent", "agent.sock")
	testutil.WaitFor(tb, 30*time.Second, "the agent's control socket", func() bool {
		_, err := os.Stat(l.sock)
		return err == nil || l.agent.exited()
	})
	if l.agent.exited() {
		tb.Fatalf("agent exited:\n%s", tail(l.agent.out, 40))
	}
	l.admin = admin.NewClient(filepath.Join(l.dir, "core", "core.sock"))
	l.stops = append(l.stops, func() { _ = l.admin.Close() })
	l.ctl = control.NewClient(l.sock)
	l.stops = append(l.stops, func() { _ = l.ctl.Close() })
	return l
}

// status returns the agent's transport.bandwidth.status for its endpoint.
func (l *linked) status(tb testing.TB) agent.LinkStatus {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ls agent.LinkStatus
	if err := l.ctl.Call(ctx, control.CmdStatus, control.EndpointRequest{Endpoint: "core"}, &ls); err != nil {
		tb.Fatalf("transport.bandwidth.status: %v\nagent:\n%s", err, tail(l.agent.out, 40))
	}
	return ls
}
