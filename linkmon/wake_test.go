package linkmon

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// smallOp sends size bytes on a new stream of a's connection and returns
// once the core has acknowledged all of them (serveStreams' running
// count), as an op's put is stored at the core.
func smallOp(t *testing.T, a *testAgent, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := a.conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("open the op's stream: %v", err)
	}
	defer st.CancelRead(0)
	defer st.CancelWrite(0)
	if _, err := st.Write(make([]byte, size)); err != nil {
		t.Fatalf("send the op: %v", err)
	}
	buf := make([]byte, 8)
	_ = st.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := io.ReadFull(st, buf); err != nil {
			t.Fatalf("the op's acknowledgement: %v", err)
		}
		if binary.BigEndian.Uint64(buf) >= uint64(size) {
			return
		}
	}
}

// TestBusyWakeSendsNoTrainAhead (issue #14, BenchmarkPutLatencyProcesses
// on lte): the first op after a quiet spell woke the idle link with Busy,
// and the bandwidth probe that fell due while it was idle started at that
// moment; its train (14-57 KB on the 10 Mbit/s uplink) queued ahead of
// the op, whose put took 57-86 ms to be stored instead of 34-42 ms. The
// hold on trains while the agent's own data starts began only at the
// op's first acknowledgement, after that train. Here an idle lte uplink
// whose probe is due is woken by Busy and a 2 KB op follows: no probe may
// start before the op is acknowledged, and at most one check train (one
// in flight from the idle schedule) may reach the core meanwhile.
func TestBusyWakeSendsNoTrainAhead(t *testing.T) {
	core := newTestCore(t)
	a := dialTestAgent(t, core, lteUplink(), 83)
	cfg := testConfig()
	cfg.IdleAfter = time.Second
	pl := &probeLog{started: make(chan struct{}, 1), trains: make(chan int, 16)}
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: pl})
	m := startMonitor(t, cfg, a, MonitorOptions{Name: "wake", Logger: log})
	waitEstimates(t, m, 1, 15*time.Second)
	// Idle, and the last probe older than ProbeInterval: a wake finds a
	// probe due, as after the benchmark's quiet spell.
	est, since := m.Stats().Estimates, time.Now()
	testutil.WaitFor(t, 30*time.Second, "the link idle with a probe due", func() bool {
		if n := m.Stats().Estimates; n != est {
			est, since = n, time.Now()
		}
		return m.Idle() && time.Since(since) > cfg.ProbeInterval+time.Second
	})
	select {
	case <-pl.started:
	default:
	}
	const size = 2 << 10
	trains0 := core.trainPackets.Load()
	start := time.Now()
	m.Busy()
	smallOp(t, a, size)
	took := time.Since(start)
	trains := core.trainPackets.Load() - trains0
	probed := len(pl.started) > 0
	t.Logf("op of %d bytes acknowledged %v after Busy; %d train packets reached the core meanwhile; probe started: %v; stats %+v",
		size, took.Round(time.Millisecond), trains, probed, m.Stats())
	if probed {
		t.Error("a bandwidth probe started between Busy and the op's acknowledgement")
	}
	capBps, _ := m.Capacity()
	if most := int64(checkPackets(capBps, 2*maxCheckDispersion)); trains > most {
		t.Errorf("%d train packets reached the core between Busy and the op's acknowledgement, want at most %d (one check train in flight)", trains, most)
	}
}
