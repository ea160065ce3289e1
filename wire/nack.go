package wire

import (
	edgesync "github.com/edge-sync/edge-sync"
)

// Nack tells the agent that the core refused an op, and why. What the agent
// does next depends on the code: CodeBaseMismatch means resend in full,
// Code.Retryable codes mean try again later, the rest mean the op is bad.
type Nack struct {
	ID   edgesync.OpID
	Code Code   // never CodeOK
	Msg  string // for humans; at most MaxMessageLen bytes
}

// NackFor builds the Nack for an op that failed with err; the code comes
// from CodeOf and the message is err's text, cut to MaxMessageLen.
func NackFor(id edgesync.OpID, err error) *Nack {
	code := CodeOf(err)
	if code == CodeOK {
		code = CodeInternal
	}
	return &Nack{ID: id, Code: code, Msg: message(err)}
}

// Err returns the refusal as an error that matches its code's sentinel.
func (f *Nack) Err() error { return ErrorFromCode(f.Code, f.Msg) }

// Type returns FrameNack.
func (f *Nack) Type() FrameType { return FrameNack }

func (f *Nack) bodyLen() int { return 16 + codedLen(f.Code, f.Msg) }

// Len returns the number of bytes Append adds.
func (f *Nack) Len() int { return frameLen(FrameNack, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *Nack) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameNack}
	c.coded(f.Code, f.Msg)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	return appendCoded(append(b, f.ID[:]...), f.Code, f.Msg), nil
}

func parseNack(r *bodyReader) (Frame, error) {
	f := &Nack{}
	r.fixed("op id", f.ID[:])
	f.Code, f.Msg = r.coded("a nack")
	return f, r.err
}

// message cuts err's text to MaxMessageLen bytes at a rune boundary.
func message(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if len(s) <= MaxMessageLen {
		return s
	}
	cut := MaxMessageLen
	for cut > 0 && s[cut]&0xc0 == 0x80 { // don't split a UTF-8 sequence
		cut--
	}
	return s[:cut]
}
