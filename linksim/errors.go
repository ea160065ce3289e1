package linksim

import "errors"

// Errors returned by linksim. Match them with errors.Is.
var (
	// ErrBadProfile means a Profile field is out of range; the message
	// names the field.
	ErrBadProfile = errors.New("bad link profile")
	// ErrUnknownProfile means a profile name is not one of Profiles().
	ErrUnknownProfile = errors.New("unknown link profile")
	// ErrBadSchedule means a schedule file has a malformed line; the
	// message names the line number.
	ErrBadSchedule = errors.New("bad schedule")
	// ErrClosed means the Conn or Relay has been closed.
	ErrClosed = errors.New("linksim: closed")
)
