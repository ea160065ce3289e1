package linkmon

import (
	"context"
	"testing"

	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// The lifecycle of the types that own goroutines
// (docs/architecture.md#lifecycle): Close is idempotent, with or without
// a start, and nothing starts after it.

func TestMonitorLifecycle(t *testing.T) {
	newMonitor := func(t *testing.T) *Monitor {
		m, err := NewMonitor(testConfig(), MonitorOptions{Name: "core"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	start := func(m *Monitor) func() error {
		return func() error { return m.Start(context.Background()) }
	}
	t.Run("never started", func(t *testing.T) {
		m := newMonitor(t)
		testutil.CheckClose(t, m.Close, start(m), ErrClosed)
	})
	t.Run("measuring", func(t *testing.T) {
		m := newMonitor(t)
		if err := m.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := m.Start(context.Background()); err != nil || !m.Measuring() {
			t.Fatalf("second Start: %v, measuring %v; want nil and still measuring", err, m.Measuring())
		}
		testutil.CheckClose(t, m.Close, start(m), ErrClosed)
		if m.Measuring() {
			t.Fatal("a closed monitor reports that it measures")
		}
	})
}

// TestProberAndResponderLifecycle: a closed prober's reader has stopped
// (its trains fail at once), and a closed responder takes no session.
func TestProberAndResponderLifecycle(t *testing.T) {
	core := newTestCore(t)
	a := dialTestAgent(t, core, linksim.Fiber(), 1)
	p, err := NewProber(a.conn, a.tr, a.session)
	if err != nil {
		t.Fatal(err)
	}
	testutil.CheckClose(t, p.Close, func() error {
		_, err := p.Train(context.Background(), 2)
		return err
	}, ErrNotAttached)

	r := NewResponder(nil)
	key, err := ProbeKeyFor(a.conn, 7)
	if err != nil {
		t.Fatal(err)
	}
	testutil.CheckClose(t, r.Close, func() error { return r.Register(a.conn, 7, key) }, ErrClosed)
}
