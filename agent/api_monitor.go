package agent

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/linkmon"
)

// This file is the agent's API for transport.bandwidth.monitor.start and
// .stop: starting and stopping link monitors, and adding endpoints at run
// time.

// MonitorStart says what StartMonitor starts. An Endpoint the agent does
// not have is added when Address (and optionally ServerName) are given;
// Monitor changes the monitor settings of that endpoint.
type MonitorStart struct {
	Endpoint   string
	Address    string
	ServerName string
	Monitor    MonitorChanges
}

// MonitorChanges are the monitor settings a StartMonitor may change; zero
// durations and counts and nil pointers keep the configured value.
type MonitorChanges struct {
	ProbeInterval     time.Duration
	SampleInterval    time.Duration
	Window            time.Duration
	ProbeTimeout      time.Duration
	MinSamples        int
	HysteresisPercent *float64
	ProbeBudget       *float64
	Active            *bool
	Passive           *bool
}

// apply returns m with the changes' set fields, or an error naming the bad
// one.
func (o MonitorChanges) apply(m config.Monitor) (config.Monitor, error) {
	for _, d := range []struct {
		name string
		v    time.Duration
		dst  *time.Duration
	}{
		{"probe_interval", o.ProbeInterval, &m.ProbeInterval},
		{"sample_interval", o.SampleInterval, &m.SampleInterval},
		{"window", o.Window, &m.Classifier.Window},
		{"probe_timeout", o.ProbeTimeout, &m.ProbeTimeout},
	} {
		if d.v < 0 {
			return m, invalidf("monitor.%s %v: want a positive duration such as 5s", d.name, d.v)
		}
		if d.v > 0 {
			*d.dst = d.v
		}
	}
	if o.MinSamples < 0 {
		return m, invalidf("monitor.min_samples %d: want at least 1", o.MinSamples)
	}
	if o.MinSamples > 0 {
		m.Classifier.MinSamples = o.MinSamples
	}
	if o.HysteresisPercent != nil {
		if *o.HysteresisPercent < 0 || *o.HysteresisPercent > 100 {
			return m, invalidf("monitor.hysteresis_percent %v: want 0..100", *o.HysteresisPercent)
		}
		m.Classifier.Hysteresis = *o.HysteresisPercent / 100
	}
	if o.ProbeBudget != nil {
		if *o.ProbeBudget <= 0 || *o.ProbeBudget > 0.5 {
			return m, invalidf("monitor.probe_budget %v: want a share of capacity in (0, 0.5]", *o.ProbeBudget)
		}
		m.Budget.Fraction = *o.ProbeBudget
	}
	if o.Active != nil {
		m.Active = *o.Active
	}
	if o.Passive != nil {
		m.Passive = *o.Passive
	}
	return m, nil
}

// MonitorResult answers monitor.start and monitor.stop.
type MonitorResult struct {
	Endpoint string `json:"endpoint"`
	Address  string `json:"address"`
	// Added is true when monitor.start added the endpoint.
	Added bool `json:"added"`
	// Monitoring says whether a link monitor now runs for the endpoint.
	Monitoring bool `json:"monitoring"`
}

// StartMonitor serves transport.bandwidth.monitor.start. A new endpoint
// (req.Address set) is added and its connection, monitor and sender start
// at once. For an endpoint the agent has, it (re)starts its link monitor
// with the changes applied to the endpoint's configured settings.
func (a *Agent) StartMonitor(ctx context.Context, req MonitorStart) (MonitorResult, error) {
	if err := ctx.Err(); err != nil {
		return MonitorResult{}, err
	}
	name := req.Endpoint
	if name == "" {
		if req.Address != "" {
			return MonitorResult{}, invalidf(`"endpoint" names the new endpoint: it is required with "address"`)
		}
		name = a.DefaultEndpoint()
	}
	if e, err := a.endpoint(name); err == nil {
		if req.Address != "" && req.Address != e.cfg.Address {
			return MonitorResult{}, invalidf("endpoint %q exists with address %s; leave out address or choose a new endpoint name", name, e.cfg.Address)
		}
		mc, err := req.Monitor.apply(e.cfg.Monitor)
		if err != nil {
			return MonitorResult{}, err
		}
		lc := linkmon.Config(mc)
		if err := lc.Validate(); err != nil {
			return MonitorResult{}, invalidf("monitor config: %v", err)
		}
		if err := e.restartMonitor(lc); err != nil {
			return MonitorResult{}, err
		}
		e.log.Info("link monitor started by operator", "settings", fmt.Sprintf("%+v", mc))
		return MonitorResult{Endpoint: name, Address: e.cfg.Address, Monitoring: true}, nil
	}
	if req.Address == "" {
		return MonitorResult{}, fmt.Errorf("%w %q: give \"address\" (host:port of its core) to add it", ErrUnknownEndpoint, name)
	}
	if _, _, err := net.SplitHostPort(req.Address); err != nil {
		return MonitorResult{}, invalidf("address %q: want host:port of the core's QUIC listener", req.Address)
	}
	mon, err := req.Monitor.apply(a.cfg.Monitor)
	if err != nil {
		return MonitorResult{}, err
	}
	if err := linkmon.Config(mon).Validate(); err != nil {
		return MonitorResult{}, invalidf("monitor config: %v", err)
	}
	ec := config.Endpoint{Name: name, Address: req.Address, ServerName: req.ServerName, Monitor: mon}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return MonitorResult{}, ErrClosed
	}
	if _, ok := a.eps[name]; ok {
		return MonitorResult{}, invalidf("endpoint %q was added meanwhile", name)
	}
	// Under a.mu: the endpoint starts with the overrides SetProfile leaves.
	e, err := newEndpoint(a, ec, a.overrides)
	if err != nil {
		return MonitorResult{}, fmt.Errorf("add endpoint: %w", err)
	}
	a.eps[name] = e
	if a.started {
		a.startEndpoint(e)
	}
	a.log.Info("endpoint added at run time", "endpoint", name, "address", req.Address)
	return MonitorResult{Endpoint: name, Address: req.Address, Added: true, Monitoring: a.started}, nil
}

// StopMonitor serves transport.bandwidth.monitor.stop: it stops the
// endpoint's link monitor; the link keeps its last classification. With no
// monitor running it answers ErrNoMonitor.
func (a *Agent) StopMonitor(endpoint string) (MonitorResult, error) {
	e, err := a.endpoint(endpoint)
	if err != nil {
		return MonitorResult{}, err
	}
	if err := e.stopMonitor(); err != nil {
		return MonitorResult{}, err
	}
	e.log.Info("link monitor stopped by operator; the link keeps its last class")
	return MonitorResult{Endpoint: e.name, Address: e.cfg.Address}, nil
}
