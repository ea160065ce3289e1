package soak

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/agent"
	"github.com/edge-sync/edge-sync/agent/control"
	"github.com/edge-sync/edge-sync/core/admin"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// goodputLink is goodput row 4 (docs/linksim.md, "The goodput rows"): a
// clean short link, 20 Mbit/s each way, 20 ms RTT, no loss.
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
// Where the time goes (processTimes: put-s, start-s, data-s, idle-s,
// tail-s) and
// what crossed the link (wire/payload, probe-B) are reported as means
// over both variants, for each binary. EDGESYNC_GOODPUT_LOGS=DIR appends
// the processes' logs, at trace level (the link monitor's probes and
// checks), to files in DIR.
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
	var parts, baseParts processTimes
	run := func(bin string, tuned bool, sum *time.Duration, parts *processTimes) {
		pt := processTransfer(b, bin, file, tuned)
		*sum += pt.took
		parts.add(pt)
	}
	for b.Loop() {
		run(bin, false, &def, &parts)
		if base != "" {
			run(base, false, &baseDef, &baseParts)
		}
		run(bin, true, &tuned, &parts)
		if base != "" {
			run(base, true, &baseTuned, &baseParts)
		}
	}
	bits := float64(len(payload)*8) * float64(b.N)
	rate := float64(goodputLink().Up.RateBps)
	parts.report(b, "", 2*b.N, len(payload))
	if base != "" {
		baseParts.report(b, "base-", 2*b.N, len(payload))
	}
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

// processTimes is where one process transfer's time goes, from the start
// of `edge-sync put` until the core lists the op: put (until put
// returned: the file is in the agent's outbox; it overlaps the rest),
// start (until the relay's uplink carried the transfer's first 64 KiB),
// data (from there until it carried as many bytes as the payload: with
// packet overhead, a few per cent short of the end), tail (from there
// until the core lists the op: the rest of the data, the commit, and the
// listing); took = start + data + tail. idle is how long the uplink sat idle (its
// serialiser had nothing to send, read every 2 ms) within data. wire are
// the uplink's bytes from the put until listed, probe the agent's link
// monitor's bytes (trains and pings) in that time, from its status.
type processTimes struct {
	took, put, start, data, tail, idle time.Duration
	wire, probe                        int64
}

func (t *processTimes) add(u processTimes) {
	t.took += u.took
	t.put += u.put
	t.start += u.start
	t.data += u.data
	t.tail += u.tail
	t.idle += u.idle
	t.wire += u.wire
	t.probe += u.probe
}

// report reports the mean of n transfers' parts, named with prefix.
func (t processTimes) report(b *testing.B, prefix string, n, payload int) {
	f := float64(n)
	b.ReportMetric(t.put.Seconds()/f, prefix+"put-s")
	b.ReportMetric(t.start.Seconds()/f, prefix+"start-s")
	b.ReportMetric(t.data.Seconds()/f, prefix+"data-s")
	b.ReportMetric(t.tail.Seconds()/f, prefix+"tail-s")
	b.ReportMetric(t.idle.Seconds()/f, prefix+"idle-s")
	b.ReportMetric(float64(t.wire)/f/float64(payload), prefix+"wire/payload")
	b.ReportMetric(float64(t.probe)/f, prefix+"probe-B")
}

// processTransfer starts a core, a relay and an agent of binary bin
// (default config, or every batch interval 0 if tuned), waits 8 s, and
// times `edge-sync put` of file until the core lists it (processTimes).
func processTransfer(b *testing.B, bin, file string, tuned bool) processTimes {
	b.Helper()
	dir := b.TempDir()
	p := testutil.NewPKI(b, "site-1")
	coreAddr := testutil.FreeUDPAddr(b)
	logs := os.Getenv("EDGESYNC_GOODPUT_LOGS")
	coreLog, agentLog, level := "", "", "info"
	if logs != "" {
		coreLog, agentLog, level = filepath.Join(logs, "core.log"), filepath.Join(logs, "agent.log"), "trace"
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
		profiles = intervalZero()
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
	ctl := control.NewClient(sock)
	defer ctl.Close()
	probe0 := probeBytes(b, ctl)
	wire0 := relay.Stats().Up.Bytes
	start := time.Now()
	if logs != "" {
		b.Logf("put started %s; relay %+v", start.Format("15:04:05.000000"), relay.Stats())
	}
	put := startBin(b, bin, "put", "", "put", "--socket", sock, "--key", "bulk", "--priority", "high", file)
	// The relay's counters, read every 2 ms until listed, time the
	// transfer's first 64 KiB and its payload's worth of bytes on the link.
	fi, err := os.Stat(file)
	if err != nil {
		b.Fatal(err)
	}
	var pt processTimes
	watched, carried := make(chan struct{}), make(chan struct{})
	stopWatch := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		putDone := put.done
		last := start
		for {
			select {
			case <-stopWatch:
				return
			case <-putDone:
				pt.put, putDone = time.Since(start), nil
			case <-tick.C:
			}
			now, st := time.Now(), relay.Stats().Up
			n := st.Bytes - wire0
			if pt.start != 0 && pt.data == 0 && st.QueueDelay == 0 {
				pt.idle += now.Sub(last)
			}
			last = now
			if pt.start == 0 && n >= 64<<10 {
				pt.start = time.Since(start)
			}
			if pt.data == 0 && n >= uint64(fi.Size()) {
				pt.data = time.Since(start)
				close(carried)
			}
		}
	}()
	// The core cannot list the op before the link has carried its
	// payload's bytes: the listing is asked for from then on, every 10 ms,
	// and not all along (100 requests a second to the core during the
	// transfer, which no user waiting for the op makes). The time is
	// still the put's start to the first listing that shows the op.
	listed := func() bool {
		select {
		case <-carried:
		default:
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		evs, err := a.Events(ctx, "site-1", 1, 10)
		return err == nil && len(evs) > 0
	}
	testutil.WaitFor(b, 5*time.Minute, "the core to list the put's event", listed)
	pt.took = time.Since(start)
	pt.wire = int64(relay.Stats().Up.Bytes - wire0)
	close(stopWatch)
	<-watched
	pt.probe = probeBytes(b, ctl) - probe0
	if logs != "" {
		b.Logf("listed %s, %v after the put; relay %+v", time.Now().Format("15:04:05.000000"), pt.took, relay.Stats())
	}
	<-put.done
	if put.cmd.ProcessState.ExitCode() != 0 {
		b.Fatalf("put failed:\n%s", tail(put.out, 20))
	}
	if pt.put == 0 {
		pt.put = pt.took // put returned after the listing
	}
	if pt.data == 0 {
		pt.data = pt.took
	}
	// The parts as intervals: start after the put's start, data after
	// the first 64 KiB, tail after the payload's worth of bytes.
	pt.tail = pt.took - pt.data
	pt.data -= pt.start
	if logs != "" {
		b.Logf("put returned %v, first 64 KiB %v, data %v (link idle %v), tail %v; %d bytes up, %d of probes",
			pt.put, pt.start, pt.data, pt.idle, pt.tail, pt.wire, pt.probe)
	}
	return pt
}

// probeBytes returns the bytes the agent's link monitor has sent to
// measure the link, from its status.
func probeBytes(b *testing.B, c *control.Client) int64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var ls agent.LinkStatus
	if err := c.Call(ctx, control.CmdStatus, control.EndpointRequest{Endpoint: "core"}, &ls); err != nil {
		b.Fatalf("transport.bandwidth.status: %v", err)
	}
	return ls.ProbeBytes
}
