package wire

import "github.com/quic-go/quic-go/quicvarint"

// Error reports a failure that is not about one op (a bad Hello, a broken
// stream, a core shutting down). The sender closes the stream or connection
// after it.
type Error struct {
	Code Code   // never CodeOK
	Msg  string // for humans; at most MaxMessageLen bytes
}

// ErrorFrameFor builds the Error frame for err; the code comes from CodeOf
// and the message is err's text, cut to MaxMessageLen.
func ErrorFrameFor(err error) *Error {
	code := CodeOf(err)
	if code == CodeOK {
		code = CodeInternal
	}
	return &Error{Code: code, Msg: message(err)}
}

// Err returns the failure as an error that matches its code's sentinel.
func (f *Error) Err() error { return ErrorFromCode(f.Code, f.Msg) }

// Type returns FrameError.
func (f *Error) Type() FrameType { return FrameError }

func (f *Error) bodyLen() int { return varintLen(uint64(f.Code)) + bytesLen(len(f.Msg)) }

// Len returns the number of bytes Append adds.
func (f *Error) Len() int { return frameLen(FrameError, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *Error) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameError}
	c.valid("code", f.Code != CodeOK, f.Code)
	c.length("message", len(f.Msg), MaxMessageLen)
	if c.err != nil {
		return b, c.err
	}
	b, err := appendHeader(b, FrameError, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = quicvarint.Append(b, uint64(f.Code))
	return appendString(b, f.Msg), nil
}

func parseError(r *bodyReader) (Frame, error) {
	f := &Error{}
	f.Code = Code(r.uintN("code", 16))
	if r.err == nil && f.Code == CodeOK {
		r.fail(ErrInvalidField, "code", "an error cannot say ok")
	}
	f.Msg = r.string("message", MaxMessageLen)
	return f, r.err
}
