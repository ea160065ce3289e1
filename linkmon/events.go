package linkmon

import (
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

// EventKind says what an Event reports.
type EventKind uint8

// The event kinds.
const (
	// LinkClassChanged: the measured class changed; Event.Change says how.
	LinkClassChanged EventKind = iota + 1
	// ParametersChanged: the effective class or sync parameters changed
	// (class, bandwidth within the class, pin or per-class override).
	ParametersChanged
)

// String returns the kind's name.
func (k EventKind) String() string {
	switch k {
	case LinkClassChanged:
		return "LinkClassChanged"
	case ParametersChanged:
		return "ParametersChanged"
	}
	return "EventKind(?)"
}

// Event is one notification from a Monitor.
type Event struct {
	Kind EventKind
	// Endpoint is the monitor's name.
	Endpoint string
	// At is when the event happened.
	At time.Time
	// Change is set for LinkClassChanged.
	Change *ClassChange
	// Class and Parameters are the effective class and parameters after
	// the event (pin applied), set for both kinds.
	Class      edgesync.LinkClass
	Parameters SyncParameters
}

// subscriberBuffer is each subscriber's queue; past it the oldest event is
// dropped.
const subscriberBuffer = 16

type subscriber struct {
	ch      chan Event
	dropped uint64
}

// publish hands ev to every subscriber without blocking: a full queue
// loses its oldest event. Called with m.mu held.
func (m *Monitor) publish(ev Event) {
	for _, s := range m.subs {
		for {
			select {
			case s.ch <- ev:
			default:
				select {
				case <-s.ch:
					s.dropped++
				default:
				}
				continue
			}
			break
		}
	}
}

// Subscribe returns a channel of the monitor's events and a function that
// ends the subscription (and closes the channel). The monitor never waits
// for a subscriber: each has a queue of 16 events and, when it is full,
// the oldest event is dropped to make room (drop-oldest). A subscriber
// that fell behind should read Snapshot for the current truth. The
// channel is also closed by Close (not by Stop).
func (m *Monitor) Subscribe() (<-chan Event, func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := &subscriber{ch: make(chan Event, subscriberBuffer)}
	if m.closed {
		close(s.ch)
		return s.ch, func() {}
	}
	id := m.nextSub
	m.nextSub++
	m.subs[id] = s
	return s.ch, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if _, ok := m.subs[id]; ok {
			delete(m.subs, id)
			close(s.ch)
		}
	}
}
