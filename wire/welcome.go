package wire

import (
	"github.com/quic-go/quic-go/quicvarint"
)

// QuotaUnlimited in Welcome.QuotaLeft means the core sets no quota.
const QuotaUnlimited = quicvarint.Max

// Welcome is the core's answer to Hello: the version both will speak, who
// the core is, and the limits the agent must respect on this connection.
type Welcome struct {
	Version    uint32 // chosen from Hello.Versions; must be one this package speaks
	Core       string // core name, at most MaxNameLen bytes
	Caps       Capabilities
	MaxFrame   uint64 // largest frame the core reads; the agent uses min(MaxFrame, MaxFrameSize)
	MaxOpBytes uint64 // largest encoded op the core accepts
	QuotaLeft  uint64 // bytes the agent may still store; QuotaUnlimited if none
	// ProbeSession names this connection in sealed raw probe packets; the
	// key comes from the TLS exporter (see DeriveProbeKey).
	ProbeSession uint64
}

// Type returns FrameWelcome.
func (f *Welcome) Type() FrameType { return FrameWelcome }

func (f *Welcome) bodyLen() int {
	return varintLen(uint64(f.Version)) + bytesLen(len(f.Core)) + varintLen(uint64(f.Caps)) +
		varintLen(f.MaxFrame) + varintLen(f.MaxOpBytes) + varintLen(f.QuotaLeft) + 8
}

// Len returns the number of bytes Append adds.
func (f *Welcome) Len() int { return frameLen(FrameWelcome, f.bodyLen()) }

// Append appends the encoded frame to b.
func (f *Welcome) Append(b []byte) ([]byte, error) {
	c := checker{t: FrameWelcome}
	if !versionSupported(f.Version) {
		c.fail(ErrUnsupportedVersion, "version", "%d is not one of %v", f.Version, SupportedVersions)
	}
	c.length("core", len(f.Core), MaxNameLen)
	c.varint("capabilities", uint64(f.Caps))
	c.varint("max frame", f.MaxFrame)
	c.varint("max op bytes", f.MaxOpBytes)
	c.varint("quota left", f.QuotaLeft)
	b, err := c.header(b, f.bodyLen())
	if err != nil {
		return b, err
	}
	b = quicvarint.Append(b, uint64(f.Version))
	b = appendString(b, f.Core)
	b = quicvarint.Append(b, uint64(f.Caps))
	b = quicvarint.Append(b, f.MaxFrame)
	b = quicvarint.Append(b, f.MaxOpBytes)
	b = quicvarint.Append(b, f.QuotaLeft)
	b = appendUint64(b, f.ProbeSession)
	return b, nil
}

func parseWelcome(r *bodyReader) (Frame, error) {
	f := &Welcome{}
	f.Version = uint32(r.uintN("version", 32))
	if r.err == nil && !versionSupported(f.Version) {
		r.fail(ErrUnsupportedVersion, "version", "%d is not one of %v", f.Version, SupportedVersions)
	}
	f.Core = r.string("core", MaxNameLen)
	f.Caps = Capabilities(r.varint("capabilities"))
	f.MaxFrame = r.varint("max frame")
	f.MaxOpBytes = r.varint("max op bytes")
	f.QuotaLeft = r.varint("quota left")
	f.ProbeSession = r.uint64("probe session")
	return f, r.err
}
