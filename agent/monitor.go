package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/linkmon"
)

// The endpoint's link monitor: it measures while the endpoint runs,
// transport.bandwidth.monitor.stop and .start stop it and restart it with
// new settings, and it is attached to every connection the endpoint makes.
// Stopped or measuring, it holds the link state the sender and the control
// surface read.

// linkMonitor is what the control surface needs of a measuring link
// monitor.
type linkMonitor interface {
	Latest() linkmon.Measurement
	Measure(ctx context.Context) (linkmon.Measurement, error)
	History(window time.Duration) []linkmon.Measurement
}

// monitor returns the endpoint's link monitor while it measures, or nil.
func (e *endpoint) monitor() linkMonitor {
	if m := e.measuring(); m != nil {
		return m
	}
	return nil
}

// measuring returns the endpoint's link monitor while it measures, or nil.
func (e *endpoint) measuring() *linkmon.Monitor {
	if e.mon.Measuring() {
		return e.mon
	}
	return nil
}

// startMonitor starts measuring as the endpoint's run is started
// (startEndpoint). It fails only when the run's ctx has already ended,
// and the run then ends too.
func (e *endpoint) startMonitor(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.running = true
	if err := e.mon.Start(ctx); err != nil {
		e.log.Debug("link monitor not started", "error", err)
	}
}

// closeMonitor closes the monitor as the endpoint's run ends; the last
// status is kept in DataDir/link-NAME.json for the next process.
func (e *endpoint) closeMonitor() {
	e.mu.Lock()
	e.running = false
	e.mu.Unlock()
	if err := e.mon.Close(); err != nil {
		e.log.Warn("link status not saved; the next start measures from nothing", "error", err)
	}
}

// restartMonitor measures again with cfg (transport.bandwidth.monitor.start),
// keeping the class, the pin and the overrides. It fails with ErrClosed
// unless the endpoint runs.
func (e *endpoint) restartMonitor(cfg linkmon.Config) error {
	e.mu.Lock()
	defer e.mu.Unlock() // held so that the run cannot end meanwhile
	if !e.running {
		return fmt.Errorf("start monitor of %q: the agent is not running: %w", e.name, ErrClosed)
	}
	if err := e.mon.Restart(cfg); err != nil {
		return fmt.Errorf("start monitor of %q: %w", e.name, err)
	}
	return nil
}

// stopMonitor stops measuring (transport.bandwidth.monitor.stop); the link
// keeps its last class. It fails with ErrNoMonitor when none measures.
func (e *endpoint) stopMonitor() error {
	err := e.mon.Stop()
	switch {
	case errors.Is(err, linkmon.ErrNotRunning):
		return fmt.Errorf("stop monitor of %q: %w", e.name, ErrNoMonitor)
	case err != nil:
		// The monitor stopped; only the status file is behind.
		e.log.Warn("link monitor stopped, but its status was not saved", "error", err)
	}
	return nil
}

// probeBytes returns the bytes the endpoint's link monitor has sent as
// probes (trains and pings) since the agent started.
func (e *endpoint) probeBytes() int64 {
	st := e.mon.Stats()
	return st.TrainBytes + st.PingBytes
}

// attach hands the endpoint's connection (nil when it is lost) to the
// monitor, which keeps it while stopped.
func (e *endpoint) attach(conn *quic.Conn, tr *quic.Transport, session uint64) {
	if conn == nil {
		e.mon.Detach()
		return
	}
	if err := e.mon.Attach(conn, tr, session); err != nil {
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

// appLimited tells the link monitor the sender ran out of data, so that
// the delivery rate is only a lower bound of the capacity.
func (e *endpoint) appLimited() {
	if m := e.measuring(); m != nil {
		m.DeliveryMeter().OnAppLimited()
	}
}

// delivered tells the link monitor that n bytes of the agent's data were
// delivered now: the data lane's per acknowledgement (laneDelivery), a
// stream of several ops' or summaries' at its answers (answerDelivered).
func (e *endpoint) delivered(n int) {
	if m := e.measuring(); m != nil {
		m.DeliveryMeter().OnAcked(n)
	}
}

// laneDelivery hands the data lane's acknowledged bytes, reported per
// acknowledgement, to the endpoint's link monitor as passive measurement.
type laneDelivery struct{ e *endpoint }

func (d laneDelivery) OnAcked(n int) { d.e.delivered(n) }

func (d laneDelivery) OnAppLimited() { d.e.appLimited() }

// linkDown reports whether the link monitor has seen at least two
// consecutive samples go unanswered: the link is down for now, whatever
// QUIC's idle timer thinks. (Samples missed while dialling do not count:
// the monitor starts over when a connection is attached.)
func (e *endpoint) linkDown() bool {
	m := e.measuring()
	return m != nil && m.Status().Missed >= 2
}
