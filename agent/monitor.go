package agent

import (
	"context"
	"path/filepath"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/linkmon"
)

// The endpoint's link monitor: started with the endpoint, stopped and
// restarted by transport.bandwidth.monitor.stop/start, attached to every
// connection the endpoint makes.

// linkMonitor is what the control surface needs of a link monitor.
type linkMonitor interface {
	Latest() linkmon.Measurement
	Measure(ctx context.Context) (linkmon.Measurement, error)
	History(window time.Duration) []linkmon.Measurement
}

// monitorRun is a running monitor and the goroutine that feeds its
// classification into the endpoint.
type monitorRun struct {
	mon       *linkmon.Monitor
	cfg       config.Monitor
	stopWatch context.CancelFunc
	watchDone chan struct{}
}

// attachment is the connection the monitor measures, if any.
type attachment struct {
	conn    *quic.Conn
	tr      *quic.Transport
	session uint64
}

// monitor returns the endpoint's running monitor, or nil.
func (e *endpoint) monitor() linkMonitor {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mon == nil {
		return nil
	}
	return e.mon.mon
}

func (e *endpoint) liveMonitor() *linkmon.Monitor {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mon == nil {
		return nil
	}
	return e.mon.mon
}

// startMonitor starts a link monitor with mc, replacing a running one, and
// attaches it to the current connection. The last status is kept in
// DataDir/link-NAME.json across restarts.
func (e *endpoint) startMonitor(ctx context.Context, mc config.Monitor) error {
	lc, err := monitorConfig(mc)
	if err != nil {
		return err
	}
	m, err := linkmon.NewMonitor(lc, linkmon.MonitorOptions{
		Name:      e.name,
		Logger:    e.log, // the monitor names its own sub-logger
		StatePath: filepath.Join(e.a.cfg.DataDir, "link-"+safeName(e.name)+".json"),
	})
	if err != nil {
		return err
	}
	e.stopMonitor()
	m.Start()
	wctx, cancel := context.WithCancel(ctx)
	run := &monitorRun{mon: m, cfg: mc, stopWatch: cancel, watchDone: make(chan struct{})}
	go func() { defer close(run.watchDone); e.watch(wctx, m) }()
	e.mu.Lock()
	e.mon = run
	at := e.attached
	e.mu.Unlock()
	if at.conn != nil {
		if err := m.Attach(at.conn, at.tr, at.session); err != nil {
			e.log.Warn("link monitor cannot use this connection", "error", err)
		}
	}
	return nil
}

// stopMonitor stops the running monitor, if any. The link keeps its last
// classification.
func (e *endpoint) stopMonitor() bool {
	e.mu.Lock()
	run := e.mon
	e.mon = nil
	e.mu.Unlock()
	if run == nil {
		return false
	}
	run.stopWatch()
	<-run.watchDone
	_ = run.mon.Close()
	st := run.mon.Stats()
	e.probeBytesDone.Add(st.TrainBytes + st.PingBytes)
	return true
}

// probeBytes returns the bytes the endpoint's link monitors have sent as
// probes (trains and pings) since the agent started.
func (e *endpoint) probeBytes() int64 {
	n := e.probeBytesDone.Load()
	if m := e.liveMonitor(); m != nil {
		st := m.Stats()
		n += st.TrainBytes + st.PingBytes
	}
	return n
}

// attach records the endpoint's connection (nil when it is lost) and hands
// it to the monitor.
func (e *endpoint) attach(conn *quic.Conn, tr *quic.Transport, session uint64) {
	e.mu.Lock()
	e.attached = attachment{conn: conn, tr: tr, session: session}
	m := e.mon
	e.mu.Unlock()
	if m == nil {
		return
	}
	if conn == nil {
		m.mon.Detach()
		return
	}
	if err := m.mon.Attach(conn, tr, session); err != nil {
		e.log.Warn("link monitor cannot use this connection", "error", err)
	}
}

func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

// watch feeds the monitor's classification into the endpoint's link state
// until ctx ends.
func (e *endpoint) watch(ctx context.Context, m *linkmon.Monitor) {
	events, cancel := m.Subscribe()
	defer cancel()
	e.setStatus(m.Status(), "")
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			reason := ""
			if ev.Change != nil {
				reason = ev.Change.Reason
			}
			e.setStatus(m.Status(), reason)
		}
	}
}

// appLimited tells the link monitor the sender ran out of data, so that
// the delivery rate is only a lower bound of the capacity.
func (e *endpoint) appLimited() {
	if m := e.liveMonitor(); m != nil {
		m.DeliveryMeter().OnAppLimited()
	}
}

// laneDelivery hands the data lane's acknowledged bytes, reported per
// acknowledgement, to the endpoint's link monitor as passive measurement.
type laneDelivery struct{ e *endpoint }

func (d laneDelivery) OnAcked(n int) {
	if m := d.e.liveMonitor(); m != nil {
		m.DeliveryMeter().OnAcked(n)
	}
}

func (d laneDelivery) OnAppLimited() { d.e.appLimited() }

// linkDown reports whether the link monitor has seen at least two
// consecutive samples go unanswered: the link is down for now, whatever
// QUIC's idle timer thinks. (Samples missed while dialling do not count:
// the monitor starts over when a connection is attached.)
func (e *endpoint) linkDown() bool {
	m := e.liveMonitor()
	return m != nil && m.Status().Missed >= 2
}
