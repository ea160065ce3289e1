package linkmon

import (
	"fmt"
	"maps"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// The monitor's link state: what the sender is to do about the link, and
// why. The Monitor is its one owner: it derives the effective class and
// sync parameters from the measured status, the per-class overrides and
// the operator's pin, here and nowhere else, and publishes them.

// LinkState is a snapshot of what a Monitor publishes about its link: the
// class and sync parameters the sender is to use, and what they follow
// from.
type LinkState struct {
	// Status is the classifier's view: the measured class, the median
	// figures it was judged on, the last measured change.
	Status Status
	// Pin is the operator's pin; Pin{} is auto.
	Pin Pin
	// Class is the effective class: the pinned one, else the measured one.
	Class edgesync.LinkClass
	// Params are the sync parameters of Class at the measured bandwidth,
	// with the per-class overrides and the pin applied.
	Params SyncParameters
	// Since is when Class last changed (at first, when the monitor was
	// made); Reason is the latest cause: a measured class change or a pin.
	Since  time.Time
	Reason string
	// Gen counts the changes of Params; Changed is closed at the next one.
	Gen     uint64
	Changed <-chan struct{}
}

// noMeasurement is the Reason until the first measured class change or
// pin.
const noMeasurement = "no measurement yet"

// Snapshot returns the link state, all of it from one moment.
func (m *Monitor) Snapshot() LinkState {
	m.mu.Lock()
	defer m.mu.Unlock()
	return LinkState{Status: m.statusLocked(), Pin: m.pin, Class: m.class, Params: m.params,
		Since: m.since, Reason: m.reason, Gen: m.gen, Changed: m.changed}
}

// Parameters returns the effective sync parameters, their generation
// (LinkState.Gen) and a channel closed at their next change: the
// sender's view of Snapshot, without copying the status.
func (m *Monitor) Parameters() (SyncParameters, uint64, <-chan struct{}) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.params, m.gen, m.changed
}

// SetPin sets the operator's pin (Pin{} is auto) and publishes what
// changes. The pin lasts as long as the monitor, across Stop and Restart;
// it is not kept in the status file.
func (m *Monitor) SetPin(p Pin) error {
	if err := p.Validate(); err != nil {
		return fmt.Errorf("set pin: %w", err)
	}
	m.mu.Lock()
	m.pin = p
	m.recompute(m.now(), "operator pin: "+p.String())
	m.mu.Unlock()
	m.log.Info("pin set", "pin", p.String())
	return nil
}

// SetProfile replaces the override of one class's sync parameters and
// publishes what changes. A bad override is refused with an error naming
// the field, and nothing changes. Like the pin, the overrides last as long
// as the monitor.
func (m *Monitor) SetProfile(class edgesync.LinkClass, o Override) error {
	if !class.Valid() {
		return fmt.Errorf("set profile: %w: unknown class %d", ErrInvalidConfig, uint8(class))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ov := maps.Clone(m.overrides)
	if ov == nil {
		ov = map[edgesync.LinkClass]Override{}
	}
	ov[class] = o
	adj, err := NewAdjuster(ov)
	if err != nil {
		return fmt.Errorf("set profile %s: %w", class, err)
	}
	m.adj, m.overrides = adj, ov
	m.recompute(m.now(), "")
	return nil
}

// Profile returns a class's profile as the monitor uses it: the default
// with the class's override applied.
func (m *Monitor) Profile(class edgesync.LinkClass) ClassProfile {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.adj.Profile(class)
}

// recompute derives the effective class and parameters from the status,
// the pin and the overrides, and publishes a change: Since moves when the
// class changes, Gen and Changed when the parameters do. reason, when
// set, becomes the Reason (a measured change or a pin, whether or not the
// effective class moved). Called with m.mu held.
func (m *Monitor) recompute(at time.Time, reason string) {
	if reason != "" {
		m.reason = reason
	}
	class, params := m.adj.Effective(m.status, m.pin)
	if class == m.class && params == m.params {
		return
	}
	if class != m.class {
		// The measured change is logged with its figures (observe); this
		// line adds the effective class, which a pin may hold elsewhere.
		m.log.Debug("effective link class changed", "from", m.class, "to", class, "reason", m.reason)
		m.class, m.since = class, at
	}
	if params != m.params {
		if params.Mode != m.params.Mode {
			m.log.Info("sync mode switched", "from", m.params.Mode, "to", params.Mode, "params", params.String())
			m.stats.ModeSwitches++
		}
		m.params = params
		m.gen++
		close(m.changed)
		m.changed = make(chan struct{})
	}
	m.publish(Event{Kind: ParametersChanged, Endpoint: m.name, At: at, Class: class, Parameters: params})
}
