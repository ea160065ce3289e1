package linkmon

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// startingSender is what the agent's data lane tells the delivery meter
// while its rate model starts up: every acknowledgement until until comes
// with OnAppLimited (the lane marks its start-up rates as lower bounds,
// wire/lane's stepData), then the acknowledgements of a link-filling
// sender.
type startingSender struct {
	DeliveryReporter
	until time.Time
}

func (s startingSender) OnAcked(n int) {
	if time.Now().Before(s.until) {
		s.DeliveryReporter.OnAppLimited()
	}
	s.DeliveryReporter.OnAcked(n)
}

// broadbandMonitor starts a monitor with cfg and opts on an agent's link
// of 20 Mbit/s, 20 ms (filledLink, seeded) and waits until it is
// broadband.
func broadbandMonitor(t *testing.T, seed uint64, cfg Config, opts MonitorOptions) (*testAgent, *Monitor) {
	t.Helper()
	a := dialTestAgent(t, newTestCore(t), filledLink(20e6), seed)
	m, events := startThenAttach(t, cfg, a, opts)
	if _, _, ok := waitClass(t, events, 15*time.Second, is(edgesync.Broadband)); !ok {
		t.Fatalf("not broadband within 15s; status %+v", m.Status())
	}
	return a, m
}

// TestNoTrainsWhileOwnSenderStarts: when the agent's own transfer starts
// on a measured link, its start-up rates are lower bounds and its queue
// raises the RTT; the monitor sent a bandwidth probe (the RTT jump calls
// one early) and check trains into that queue until the sender's
// delivery rate said the link was full. In BenchmarkGoodputProcesses
// (goodput row 4: clean 20 Mbit/s, 20 ms, 16 MiB) nearly every transfer
// carried one such probe, 3 trains of 42-97 packets: 150-350 KB, 1-2 % of
// the transfer's time, measuring neither the link nor the sender. Here a
// bulk sender starts on a 20 Mbit/s, 20 ms link whose capacity the monitor
// has measured, marking its first 1.5 s app-limited as the lane's start-up
// does: no probe and at most one check train (one already in flight when it
// started) may go until its delivery rate has taken over; once it stops, a
// probe measures the link again.
func TestNoTrainsWhileOwnSenderStarts(t *testing.T) {
	a, m := broadbandMonitor(t, 73, testConfig(), MonitorOptions{Name: "ownstart"})
	waitEstimates(t, m, 2, 15*time.Second)
	// Start right after a probe ended, so that none is in flight.
	n := m.Stats().Estimates
	waitEstimates(t, m, n+1, 15*time.Second)
	before := m.Stats()
	b := startBulk(t, a, startingSender{DeliveryReporter: m.DeliveryMeter(), until: time.Now().Add(1500 * time.Millisecond)}, 0)
	if !testutil.Poll(15*time.Second, func() bool { return m.Stats().Delivered >= before.Delivered+2 }) {
		t.Fatalf("no link-filling delivery rate within 15s (%d bytes acked); stats %+v", b.acked.Load(), m.Stats())
	}
	after := m.Stats()
	t.Logf("sender started: %d bytes acked; %d probes, %d checks, %d trains (%d bytes) until its rate took over",
		b.acked.Load(), after.Probes-before.Probes, after.Checks-before.Checks, after.Trains-before.Trains, after.TrainBytes-before.TrainBytes)
	if p := after.Probes - before.Probes; p > 0 {
		t.Errorf("%d bandwidth probes while the agent's own sender started", p)
	}
	if c := after.Checks - before.Checks; c > 1 {
		t.Errorf("%d check trains while the agent's own sender started (one may have been in flight)", c)
	}
	b.stop()
	if !testutil.Poll(15*time.Second, func() bool { return m.Stats().Estimates > after.Estimates }) {
		t.Fatalf("no probe within 15s after the sender stopped; stats %+v", m.Stats())
	}
}

// probeLog watches a monitor's trace log for its probes: started gets a
// value at each probe's start, trains each finished probe's train count.
type probeLog struct {
	started chan struct{}
	trains  chan int
}

var probeTrains = regexp.MustCompile(`probe: .*trains=(\d+)`)

func (l *probeLog) Write(b []byte) (int, error) {
	line := string(b)
	switch {
	case strings.Contains(line, "probe start:"):
		select {
		case l.started <- struct{}{}:
		default:
		}
	case probeTrains.MatchString(line):
		n, _ := strconv.Atoi(probeTrains.FindStringSubmatch(line)[1])
		select {
		case l.trains <- n:
		default:
		}
	}
	return len(b), nil
}

// TestProbeYieldsToOwnSender: a scheduled probe already running when the
// agent's own data begins sends no more trains once that data is
// acknowledged (they would queue behind it). In a logged run of
// BenchmarkGoodputProcesses, probes begun 0.2-0.3 s before the put sent
// their last trains into the transfer's start: 150-340 KB counted in 2 of
// 6 transfers. Here probes have 6 trains (so that one cannot end before
// the data's first acknowledgement) and a bulk sender starts as a probe
// starts: that probe must stop early.
func TestProbeYieldsToOwnSender(t *testing.T) {
	cfg := testConfig()
	cfg.TrainsPerProbe = 6
	cfg.ProbeInterval = 8 * time.Second // 6 trains a probe within the budget
	pl := &probeLog{started: make(chan struct{}, 1), trains: make(chan int, 16)}
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: pl})
	a, m := broadbandMonitor(t, 79, cfg, MonitorOptions{Name: "yield", Logger: log})
	waitEstimates(t, m, 1, 15*time.Second) // the connection's first probe, which does not yield
	select {
	case <-pl.started:
	default:
	}
	select {
	case <-pl.started:
	case <-time.After(20 * time.Second):
		t.Fatalf("no scheduled probe within 20s; stats %+v", m.Stats())
	}
	b := startBulk(t, a, m.DeliveryMeter(), 0)
	for len(pl.trains) > 0 {
		<-pl.trains // earlier probes'
	}
	var trains int
	select {
	case trains = <-pl.trains:
	case <-time.After(20 * time.Second):
		t.Fatalf("the probe did not end within 20s; stats %+v", m.Stats())
	}
	t.Logf("the probe sent %d of %d trains; %d bytes of the sender acknowledged", trains, cfg.TrainsPerProbe, b.acked.Load())
	if trains >= cfg.TrainsPerProbe {
		t.Errorf("the probe running when the agent's own data began sent all its %d trains", trains)
	}
}
