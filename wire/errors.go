package wire

import (
	"context"
	"errors"
	"io"
	"strconv"
)

// Errors returned by parsing, encoding and the probe packet helpers, and one
// sentinel per reason code. Callers match them with errors.Is; a
// *ProtocolError received from the peer matches the sentinel of its code.
var (
	// ErrUnknownFrame: the frame type is not one this version knows.
	ErrUnknownFrame = errors.New("unknown frame type")
	// ErrFrameTooLarge: a frame declares a body longer than its type's
	// limit or the caller's maximum.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrMalformedFrame: a frame's fields do not fill its body exactly.
	ErrMalformedFrame = errors.New("malformed frame")
	// ErrUnexpectedFrame: a frame of a type that may not come at this
	// point of the conversation (Reader.ReadFrameOf).
	ErrUnexpectedFrame = errors.New("unexpected frame")
	// ErrFieldTooLong: a variable-length field exceeds its limit.
	ErrFieldTooLong = errors.New("field too long")
	// ErrInvalidField: a field holds a value outside its range (an unknown
	// priority, a negative duration, a number past 2^62-1).
	ErrInvalidField = errors.New("invalid field")
	// ErrNotProbe: a frame that is not probe-class was given to SealProbe,
	// or found inside a probe packet.
	ErrNotProbe = errors.New("not a probe frame")
	// ErrProbeAuth: a probe packet's tag does not match its key, or its
	// leading byte or session is not ours.
	ErrProbeAuth = errors.New("probe packet not authentic")

	// ErrBaseMismatch is the sentinel of CodeBaseMismatch.
	ErrBaseMismatch = errors.New("delta base mismatch")
	// ErrTooLarge is the sentinel of CodeTooLarge.
	ErrTooLarge = errors.New("too large")
	// ErrCorrupt is the sentinel of CodeCorrupt.
	ErrCorrupt = errors.New("corrupt payload")
	// ErrHashMismatch is the sentinel of CodeHashMismatch.
	ErrHashMismatch = errors.New("hash mismatch")
	// ErrQuota is the sentinel of CodeQuota.
	ErrQuota = errors.New("quota exceeded")
	// ErrUnknownAgent is the sentinel of CodeUnknownAgent.
	ErrUnknownAgent = errors.New("unknown agent")
	// ErrUnsupportedVersion is the sentinel of CodeVersion.
	ErrUnsupportedVersion = errors.New("unsupported protocol version")
	// ErrInternal is the sentinel of CodeInternal.
	ErrInternal = errors.New("internal error")
	// ErrBusy is the sentinel of CodeBusy.
	ErrBusy = errors.New("busy, retry later")
	// ErrExpired is the sentinel of CodeExpired.
	ErrExpired = errors.New("operation expired")
	// ErrBadRequest is the sentinel of CodeBadRequest.
	ErrBadRequest = errors.New("bad request")
	// ErrShuttingDown is the sentinel of CodeShuttingDown.
	ErrShuttingDown = errors.New("shutting down")
	// ErrUnknownOp is the sentinel of CodeUnknownOp (reserved: no core
	// sends it).
	ErrUnknownOp = errors.New("unknown operation")
	// ErrStoreFull is the sentinel of CodeStoreFull.
	ErrStoreFull = errors.New("store full")
)

// Code is a reason code carried in Nack and Error frames.
type Code uint16

// The reason codes. Values are part of the protocol: never renumber.
const (
	CodeOK           Code = 0  // no error
	CodeBaseMismatch Code = 1  // the delta's base is not the core's current version: resend in full
	CodeTooLarge     Code = 2  // an op or frame exceeds a limit
	CodeCorrupt      Code = 3  // the payload does not decode
	CodeHashMismatch Code = 4  // the decoded payload's hash differs from the header's
	CodeQuota        Code = 5  // the agent's storage quota at the core is used up
	CodeUnknownAgent Code = 6  // the agent's identity is not known to the core
	CodeVersion      Code = 7  // no protocol version in common
	CodeInternal     Code = 8  // the peer failed; retry later
	CodeBusy         Code = 9  // the peer is overloaded; retry later
	CodeExpired      Code = 10 // the op's TTL ended before it was stored
	CodeBadRequest   Code = 11 // the frames break the protocol
	CodeShuttingDown Code = 12 // the peer is closing; reconnect later
	// CodeUnknownOp: reserved; no core sends it. A core answers the Data
	// or Commit of an op with no OpHeader bad-request (ErrUnexpectedFrame);
	// an agent parks an op refused unknown-op as it does bad-request.
	CodeUnknownOp Code = 13
	// CodeStoreFull: the core's store has no room for the op (its disk
	// is full, or its file or stream reached its size limit); retry after
	// a backoff. An agent older than the code parks the op as it does
	// any refusal it does not know (for 10 s, doubling): a retryable
	// refusal there too.
	CodeStoreFull Code = 14

	numCodes = 15
)

var codeNames = [numCodes]string{
	"ok", "base-mismatch", "too-large", "corrupt", "hash-mismatch", "quota",
	"unknown-agent", "version", "internal", "busy", "expired", "bad-request",
	"shutting-down", "unknown-op", "store-full",
}

var codeSentinels = [numCodes]error{
	nil, ErrBaseMismatch, ErrTooLarge, ErrCorrupt, ErrHashMismatch, ErrQuota,
	ErrUnknownAgent, ErrUnsupportedVersion, ErrInternal, ErrBusy, ErrExpired,
	ErrBadRequest, ErrShuttingDown, ErrUnknownOp, ErrStoreFull,
}

// String returns the code's name, e.g. "base-mismatch".
func (c Code) String() string {
	if c < numCodes {
		return codeNames[c]
	}
	return "code(" + strconv.Itoa(int(c)) + ")"
}

// Retryable reports whether the same op may succeed if sent again unchanged
// later (busy, internal, shutting down, quota, store full).
func (c Code) Retryable() bool {
	switch c {
	case CodeBusy, CodeInternal, CodeShuttingDown, CodeQuota, CodeStoreFull:
		return true
	}
	return false
}

// ProtocolError is an error with a reason code, as sent or received in a
// Nack or Error frame. errors.Is(err, ErrX) holds for the sentinel of its
// code.
type ProtocolError struct {
	Code Code
	Msg  string
}

// Error returns the code's name and the message.
func (e *ProtocolError) Error() string {
	if e.Msg == "" {
		return "peer: " + e.Code.String()
	}
	return "peer: " + e.Code.String() + ": " + e.Msg
}

// Is reports whether target is the sentinel of e's code.
func (e *ProtocolError) Is(target error) bool {
	return e.Code < numCodes && e.Code != CodeOK && target == codeSentinels[e.Code]
}

// ErrorFromCode turns a received code and message into an error: nil for
// CodeOK, otherwise a *ProtocolError. Unknown codes from a newer peer are
// kept as they are.
func ErrorFromCode(code Code, msg string) error {
	if code == CodeOK {
		return nil
	}
	return &ProtocolError{Code: code, Msg: msg}
}

// Coder is implemented by errors of other packages (the codec, the store)
// that know their reason code; CodeOf finds it with errors.As.
type Coder interface {
	error
	WireCode() uint16
}

// CodeOf maps an error to the reason code to send to the peer. It is the
// single place where errors become codes:
//
//   - nil is CodeOK;
//   - a *ProtocolError (possibly wrapped) keeps its code;
//   - an error wrapping a code's sentinel (ErrBaseMismatch, ...) gets that code;
//   - an error wrapping a Coder gets the Coder's code;
//   - frame-level errors: ErrFrameTooLarge and ErrFieldTooLong are
//     CodeTooLarge; ErrUnknownFrame, ErrMalformedFrame, ErrUnexpectedFrame,
//     ErrInvalidField and io.ErrUnexpectedEOF are CodeBadRequest;
//   - context cancellation is CodeShuttingDown;
//   - anything else is CodeInternal.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	if pe, ok := errors.AsType[*ProtocolError](err); ok {
		return pe.Code
	}
	for c := Code(1); c < numCodes; c++ {
		if errors.Is(err, codeSentinels[c]) {
			return c
		}
	}
	if cd, ok := errors.AsType[Coder](err); ok {
		return Code(cd.WireCode())
	}
	switch {
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrFieldTooLong):
		return CodeTooLarge
	case errors.Is(err, ErrUnknownFrame), errors.Is(err, ErrMalformedFrame), errors.Is(err, ErrUnexpectedFrame),
		errors.Is(err, ErrInvalidField), errors.Is(err, io.ErrUnexpectedEOF):
		return CodeBadRequest
	case errors.Is(err, context.Canceled):
		return CodeShuttingDown
	}
	return CodeInternal
}
