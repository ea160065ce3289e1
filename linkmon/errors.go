package linkmon

import "errors"

// Sentinel errors of the package. Errors returned by Validate and the
// constructors wrap one of these and name the offending field; match them
// with errors.Is, never by text.
var (
	// ErrInvalidConfig is wrapped by every configuration validation error.
	ErrInvalidConfig = errors.New("invalid linkmon config")
	// ErrInvalidMeasurement is wrapped when a measurement's figures are
	// impossible (negative, NaN, loss outside 0..1, no timestamp).
	ErrInvalidMeasurement = errors.New("invalid measurement")
	// ErrInvalidMethod is wrapped when a measurement method is unknown.
	ErrInvalidMethod = errors.New("invalid measurement method")
	// ErrInvalidPin is wrapped when an operator pin names an unknown class
	// or mode.
	ErrInvalidPin = errors.New("invalid pin")
	// ErrNotAttached is returned when a probe needs a connection and the
	// monitor has none (or it ended).
	ErrNotAttached = errors.New("no connection attached")
	// ErrNoDatagrams is wrapped when a connection was set up without QUIC
	// datagram support on both ends.
	ErrNoDatagrams = errors.New("connection does not support datagrams")
	// ErrProbeTimeout is wrapped when a probe got no answer in time.
	ErrProbeTimeout = errors.New("probe unanswered")
	// ErrBudgetExhausted is returned when the probe budget allows no probe
	// now.
	ErrBudgetExhausted = errors.New("probe budget exhausted")
	// ErrInvalidSession is wrapped when a probe session registration is
	// inconsistent or a duplicate.
	ErrInvalidSession = errors.New("invalid probe session")
	// ErrClosed is returned by a closed Monitor or Responder.
	ErrClosed = errors.New("closed")
	// ErrNotRunning is returned by Monitor.Stop when the monitor was not
	// measuring.
	ErrNotRunning = errors.New("monitor not measuring")
	// ErrBadState is wrapped when the persisted status file cannot be read.
	ErrBadState = errors.New("bad persisted link status")
)
