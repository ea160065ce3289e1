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

func (f *Error) bodyLen() int { return codedLen(f.Code, f.Msg) }

// Len returns the number of bytes Append adds.
func (f *Error) Len() int { return frameLen(FrameError, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *Error) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameError}
	c.coded(f.Code, f.Msg)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	return appendCoded(b, f.Code, f.Msg), nil
}

func parseError(r *bodyReader) (Frame, error) {
	f := &Error{}
	f.Code, f.Msg = r.coded("an error")
	return f, r.err
}

// An Error and a Nack both carry a Code, never CodeOK, and a message of at
// most MaxMessageLen bytes, in that order; these read, write and check the
// pair for both.

func codedLen(code Code, msg string) int { return varintLen(uint64(code)) + bytesLen(len(msg)) }

func (c *checker) coded(code Code, msg string) {
	c.valid("code", code != CodeOK, code)
	c.length("message", len(msg), MaxMessageLen)
}

func appendCoded(b []byte, code Code, msg string) []byte {
	return appendString(quicvarint.Append(b, uint64(code)), msg)
}

// coded reads a code and a message; what names the frame in the error for
// a code that says ok.
func (r *bodyReader) coded(what string) (Code, string) {
	code := Code(r.uintN("code", 16))
	if r.err == nil && code == CodeOK {
		r.fail(ErrInvalidField, "code", "%s cannot say ok", what)
	}
	return code, r.string("message", MaxMessageLen)
}
