package soak

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/core/admin"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// goodputLink is row 4 of issue 14's goodput table: a clean short link,
// 20 Mbit/s each way, 20 ms RTT, no loss.
func goodputLink() linksim.Profile {
	d := linksim.Direction{RateBps: 20_000_000, Delay: 10 * time.Millisecond}
	return linksim.Profile{Name: "20mbit-20ms", Up: d, Down: d, Summary: "20 Mbit/s each way, 20 ms RTT, 0 % loss"}
}

// BenchmarkGoodputProcesses measures what a user sees: real `edge-sync
// core` and `edge-sync agent` processes, the agent's link to the core
// through a linksim relay (goodputLink), the agent up for 8 s, then
// `edge-sync put` of a 16 MiB incompressible file at priority high.
// goodput = payload bits ÷ (link rate × the time from the start of put
// until the core's admin API lists the event). It runs the agent with the
// default config (default-goodput-ratio) and with every class's batch
// interval at 0 (goodput-ratio) side by side, and reports their ratio.
//
// With EDGESYNC_GOODPUT_BASE set to another edge-sync binary (a baseline,
// such as one built from main), every transfer is also run with it, in
// turn, and the ratios of its goodput to this build's are reported
// (vs-base: this build's time ÷ the baseline's; below 1 is faster).
// EDGESYNC_GOODPUT_LOGS=DIR appends the processes' debug logs to files in
// DIR.
//
//	go test -run '^$' -bench GoodputProcesses -benchtime 1x -count 3 ./internal/soak
//	EDGESYNC_GOODPUT_BASE=/tmp/base/edge-sync go test -run '^$' -bench GoodputProcesses -benchtime 1x -count 3 ./internal/soak
func BenchmarkGoodputProcesses(b *testing.B) {
	dir := b.TempDir()
	file := filepath.Join(dir, "payload")
	payload := make([]byte, 16<<20)
	_, _ = rand.Read(payload)
	writeFile(b, file, string(payload))
	bin, base := edgeSync(b), os.Getenv("EDGESYNC_GOODPUT_BASE")
	var def, tuned, baseDef, baseTuned time.Duration
	for b.Loop() {
		def += processTransfer(b, bin, file, false)
		if base != "" {
			baseDef += processTransfer(b, base, file, false)
		}
		tuned += processTransfer(b, bin, file, true)
		if base != "" {
			baseTuned += processTransfer(b, base, file, true)
		}
	}
	bits := float64(len(payload)*8) * float64(b.N)
	rate := float64(goodputLink().Up.RateBps)
	b.ReportMetric(bits/def.Seconds()/rate, "default-goodput-ratio")
	b.ReportMetric(bits/tuned.Seconds()/rate, "goodput-ratio")
	b.ReportMetric(tuned.Seconds()/def.Seconds(), "default/tuned")
	if base != "" {
		b.ReportMetric(bits/baseDef.Seconds()/rate, "base-default-goodput-ratio")
		b.ReportMetric(bits/baseTuned.Seconds()/rate, "base-goodput-ratio")
		b.ReportMetric(def.Seconds()/baseDef.Seconds(), "default-vs-base")
		b.ReportMetric(tuned.Seconds()/baseTuned.Seconds(), "vs-base")
	}
}

// processTransfer starts a core, a relay and an agent of binary bin
// (default config, or every batch interval 0 if tuned), waits 8 s, and
// times `edge-sync put` of file until the core lists it.
func processTransfer(b *testing.B, bin, file string, tuned bool) time.Duration {
	b.Helper()
	dir := b.TempDir()
	p := testutil.NewPKI(b, "site-1")
	coreAddr := testutil.FreeUDPAddr(b)
	logs := os.Getenv("EDGESYNC_GOODPUT_LOGS")
	coreLog, agentLog, level := "", "", "info"
	if logs != "" {
		coreLog, agentLog, level = filepath.Join(logs, "core.log"), filepath.Join(logs, "agent.log"), "debug"
	}
	core := startBin(b, bin, "core", coreLog, "core", "--config", coreConfig(b, p, dir, coreAddr), "--log-level", level)
	core.waitLog(b, 30*time.Second, "listening")
	defer core.kill()
	relay, err := linksim.NewRelay(linksim.RelayConfig{Target: coreAddr, Profile: goodputLink()})
	if err != nil {
		b.Fatal(err)
	}
	defer relay.Close()
	profiles := ""
	if tuned {
		for _, c := range []string{"fiber", "broadband", "mobile", "satellite", "unknown"} {
			profiles += fmt.Sprintf("profile %q { interval = \"0s\" }\n", c)
		}
	}
	cfg := filepath.Join(dir, "agent.hcl")
	agentHCL{Name: "site-1", DataDir: filepath.Join(dir, "agent"), CA: p.CAFile, Cert: p.AgentCert, Key: p.AgentKey,
		Addr: relay.Addr().String(), Extra: profiles}.write(b, cfg)
	agent := startBin(b, bin, "agent", agentLog, "agent", "--config", cfg, "--log-level", level)
	defer agent.kill()
	sock := filepath.Join(dir, "agent", "agent.sock")
	testutil.WaitFor(b, 30*time.Second, "the agent's control socket", func() bool {
		_, err := os.Stat(sock)
		return err == nil || agent.exited()
	})
	// The protocol: the agent runs 8 s before the put, so that its
	// link monitor has measured and classed the link.
	<-time.After(8 * time.Second)
	if agent.exited() {
		b.Fatalf("agent exited:\n%s", tail(agent.out, 40))
	}
	a := admin.NewClient(filepath.Join(dir, "core", "core.sock"))
	defer a.Close()
	start := time.Now()
	if logs != "" {
		b.Logf("put started %s; relay %+v", start.Format("15:04:05.000000"), relay.Stats())
	}
	put := startBin(b, bin, "put", "", "put", "--socket", sock, "--key", "bulk", "--priority", "high", file)
	listed := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		evs, err := a.Events(ctx, "site-1", 1, 10)
		return err == nil && len(evs) > 0
	}
	testutil.WaitFor(b, 5*time.Minute, "the core to list the put's event", listed)
	took := time.Since(start)
	if logs != "" {
		b.Logf("listed %s, %v after the put; relay %+v", time.Now().Format("15:04:05.000000"), took, relay.Stats())
	}
	<-put.done
	if put.cmd.ProcessState.ExitCode() != 0 {
		b.Fatalf("put failed:\n%s", tail(put.out, 20))
	}
	return took
}
