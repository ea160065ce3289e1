package lane

import "errors"

// Errors returned by the lane. Callers match them with errors.Is.
var (
	// ErrClosed means the session or demux was closed (or its QUIC
	// connection ended) before the operation completed.
	ErrClosed = errors.New("lane closed")
	// ErrTooLarge means a Send was asked to carry more than MaxSendBytes.
	ErrTooLarge = errors.New("send too large")
	// ErrBadConfig means a Config field is out of range; the message names it.
	ErrBadConfig = errors.New("bad lane config")
	// ErrTagInUse means another session on the same demux already uses the
	// session tag derived from this connection's keys (astronomically rare;
	// callers fall back to QUIC streams).
	ErrTagInUse = errors.New("lane session tag in use")
	// ErrKindRange means a demux handler was registered for leading bytes
	// that are QUIC packets (top two bits set) or the lane's own range.
	ErrKindRange = errors.New("bad leading-byte range")
	// ErrMalformed means a packet's plaintext did not parse.
	ErrMalformed = errors.New("malformed lane packet")
)
