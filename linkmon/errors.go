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
)
