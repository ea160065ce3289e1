package wire

import (
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/quic-go/quic-go/quicvarint"
)

// Hello is the agent's first frame on the control stream: the protocol
// versions it speaks, who it is, what it can do, and the link it last saw to
// this core (so the core can start from a known capacity).
type Hello struct {
	Versions      []uint32 // 1..MaxVersions, most preferred first
	Agent         string   // agent name, at most MaxNameLen bytes
	Caps          Capabilities
	LastClass     edgesync.LinkClass // last link class seen; Unknown if none
	LastRTT       time.Duration      // last smoothed RTT; 0 if unknown
	LastBandwidth uint64             // last capacity estimate in bit/s; 0 if unknown
}

// Type returns FrameHello.
func (f *Hello) Type() FrameType { return FrameHello }

func (f *Hello) bodyLen() int {
	n := varintLen(uint64(len(f.Versions)))
	for _, v := range f.Versions {
		n += varintLen(uint64(v))
	}
	return n + bytesLen(len(f.Agent)) + varintLen(uint64(f.Caps)) + 1 +
		varintLen(uint64(f.LastRTT)) + varintLen(f.LastBandwidth)
}

// Len returns the number of bytes Append adds.
func (f *Hello) Len() int { return frameLen(FrameHello, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *Hello) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameHello}
	c.valid("versions", len(f.Versions) > 0, "none")
	c.length("versions", len(f.Versions), MaxVersions)
	c.length("agent", len(f.Agent), MaxNameLen)
	c.varint("capabilities", uint64(f.Caps))
	c.valid("last class", f.LastClass.Valid(), f.LastClass)
	c.valid("last rtt", durationOK(f.LastRTT), f.LastRTT)
	c.varint("last bandwidth", f.LastBandwidth)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = quicvarint.Append(b, uint64(len(f.Versions)))
	for _, v := range f.Versions {
		b = quicvarint.Append(b, uint64(v))
	}
	b = appendString(b, f.Agent)
	b = quicvarint.Append(b, uint64(f.Caps))
	b = append(b, byte(f.LastClass))
	b = quicvarint.Append(b, uint64(f.LastRTT))
	b = quicvarint.Append(b, f.LastBandwidth)
	return b, nil
}

func parseHello(r *bodyReader) (Frame, error) {
	f := &Hello{}
	n := r.count("versions", MaxVersions)
	if r.err == nil {
		f.Versions = make([]uint32, 0, n)
		for range n {
			f.Versions = append(f.Versions, uint32(r.uintN("version", 32)))
		}
	}
	f.Agent = r.string("agent", MaxNameLen)
	f.Caps = Capabilities(r.varint("capabilities"))
	f.LastClass = edgesync.LinkClass(r.u8("last class"))
	if r.err == nil && !f.LastClass.Valid() {
		r.fail(ErrInvalidField, "last class", "%d is no link class", uint8(f.LastClass))
	}
	f.LastRTT = time.Duration(r.varint("last rtt"))
	f.LastBandwidth = r.varint("last bandwidth")
	return f, r.err
}
