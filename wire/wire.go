package wire

import (
	"fmt"
	"strconv"
	"time"

	"github.com/quic-go/quic-go/quicvarint"
)

// ALPN is the TLS application protocol that agent and core negotiate.
const ALPN = "edge-sync/1"

// ProtocolVersion is the version of the frame protocol this package speaks.
const ProtocolVersion uint32 = 1

// SupportedVersions lists every protocol version this package can speak,
// most preferred first.
var SupportedVersions = []uint32{ProtocolVersion}

// Size limits. A frame is its header (type and length varints, at most 16
// bytes) plus its body; every limit below is checked before a byte of the
// body is read or allocated.
const (
	// MaxChunkSize is the largest Data chunk (the fiber class's chunk size).
	MaxChunkSize = 16 << 20
	// MaxFrameSize is the hard cap on a whole frame: one maximal chunk plus
	// slack for the header and the Data frame's own fields.
	MaxFrameSize = MaxChunkSize + 4096
	// MaxKeyLen is the longest key in OpHeader and Summary frames.
	MaxKeyLen = 1024
	// MaxNameLen is the longest agent, core or endpoint name.
	MaxNameLen = 255
	// MaxMessageLen is the longest human-readable message in Nack and Error.
	MaxMessageLen = 1024
	// MaxSummaryBytes is the most producer summary bytes a Summary carries.
	MaxSummaryBytes = 64 << 10
	// MaxAckIDs is the most op IDs one Ack frame acknowledges.
	MaxAckIDs = 1024
	// MaxOpsPerStream is the most ops one op stream carries with
	// CapOpsPerStream granted.
	MaxOpsPerStream = 64
	// MaxPackedOpData is the most encoded data bytes (its one Data
	// frame's chunk) an op may carry to share its stream with other ops:
	// a stream of several ops holds at most MaxOpsPerStream of these.
	MaxPackedOpData = 64 << 10
	// MaxVersions is the most protocol versions a Hello may offer.
	MaxVersions = 16
	// MaxProbeFrameSize is the largest probe-class frame (Ping, Pong,
	// ProbeTrain, ProbeReport, ProbeRequest): small enough for one QUIC
	// datagram or one sealed raw UDP packet on a 1280-byte path.
	MaxProbeFrameSize = 1200
	// smallFrameBody caps the body of the fixed-size control frames.
	smallFrameBody = 256
)

// FrameType identifies a frame; it is the first varint of every frame.
type FrameType uint64

// The frame types. Zero is reserved so that a zeroed buffer never parses.
const (
	FrameHello        FrameType = 0x01
	FrameWelcome      FrameType = 0x02
	FrameOpHeader     FrameType = 0x03
	FrameData         FrameType = 0x04
	FrameCommit       FrameType = 0x05
	FrameAck          FrameType = 0x06
	FrameNack         FrameType = 0x07
	FrameResumeQuery  FrameType = 0x08
	FrameResumeAnswer FrameType = 0x09
	FrameSummary      FrameType = 0x0a
	FrameError        FrameType = 0x0b
	FramePing         FrameType = 0x0c
	FramePong         FrameType = 0x0d
	FrameProbeTrain   FrameType = 0x0e
	FrameProbeReport  FrameType = 0x0f
	FrameProbeRequest FrameType = 0x10

	numFrameTypes = 0x11
)

// frameInfo is what Parse knows about each type before reading its body.
type frameInfo struct {
	name    string
	maxBody int
	probe   bool // may travel in a datagram or a sealed raw packet
}

var frameInfos = [numFrameTypes]frameInfo{
	FrameHello:        {"HELLO", 1024, false},
	FrameWelcome:      {"WELCOME", 1024, false},
	FrameOpHeader:     {"OP_HEADER", 4096, false},
	FrameData:         {"DATA", MaxFrameSize - 16, false},
	FrameCommit:       {"COMMIT", smallFrameBody, false},
	FrameAck:          {"ACK", 8 + MaxAckIDs*16, false},
	FrameNack:         {"NACK", 64 + MaxMessageLen, false},
	FrameResumeQuery:  {"RESUME_QUERY", smallFrameBody, false},
	FrameResumeAnswer: {"RESUME_ANSWER", smallFrameBody, false},
	FrameSummary:      {"SUMMARY", 256 + MaxKeyLen + MaxSummaryBytes, false},
	FrameError:        {"ERROR", 64 + MaxMessageLen, false},
	FramePing:         {"PING", smallFrameBody, true},
	FramePong:         {"PONG", smallFrameBody, true},
	FrameProbeTrain:   {"PROBE_TRAIN", MaxProbeFrameSize - 3, true},
	FrameProbeReport:  {"PROBE_REPORT", smallFrameBody, true},
	FrameProbeRequest: {"PROBE_REQUEST", smallFrameBody, true},
}

// Known reports whether t is a frame type of this protocol version.
func (t FrameType) Known() bool { return t < numFrameTypes && frameInfos[t].name != "" }

// String returns the frame type's name, e.g. "OP_HEADER".
func (t FrameType) String() string {
	if t.Known() {
		return frameInfos[t].name
	}
	return "frame(0x" + strconv.FormatUint(uint64(t), 16) + ")"
}

// MaxBody returns the largest body a frame of type t may declare, or 0 for
// an unknown type.
func (t FrameType) MaxBody() int {
	if t.Known() {
		return frameInfos[t].maxBody
	}
	return 0
}

// IsProbe reports whether frames of type t are probe-class frames: the ones
// that may travel as QUIC datagrams or sealed raw UDP packets.
func (t FrameType) IsProbe() bool { return t.Known() && frameInfos[t].probe }

// Frame is one protocol message.
type Frame interface {
	// Type returns the frame's type.
	Type() FrameType
	// Append appends the encoded frame (header and body) to b. It returns an
	// error wrapping ErrInvalidField or ErrFieldTooLong, and b unchanged, if
	// a field cannot be encoded.
	Append(b []byte) ([]byte, error)
	// Len returns the number of bytes Append will add.
	Len() int
}

// Negotiate picks the highest version that both this package and the peer
// (which offered the given versions) support.
func Negotiate(offered []uint32) (uint32, error) {
	var best uint32
	for _, v := range offered {
		for _, s := range SupportedVersions {
			if v == s && v > best {
				best = v
			}
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("negotiate version: peer offers %v, we speak %v: %w", offered, SupportedVersions, ErrUnsupportedVersion)
	}
	return best, nil
}

func versionSupported(v uint32) bool {
	for _, s := range SupportedVersions {
		if s == v {
			return true
		}
	}
	return false
}

// Capabilities is a bitset of optional protocol features.
type Capabilities uint64

// The capabilities a peer may announce.
const (
	CapZstd               Capabilities = 1 << iota // accepts zstd-encoded payloads
	CapDelta                                       // accepts deltas against a base version
	CapSummary                                     // accepts Summary frames
	CapResume                                      // answers ResumeQuery
	CapDatagrams                                   // Ping/Pong/probes as QUIC datagrams
	CapRawProbes                                   // probes as sealed raw UDP packets
	CapLane                                        // op data on the wire/lane data lane (OpHeader.Lane)
	CapOpsPerStream                                // several whole small ops on one op stream (MaxOpsPerStream)
	CapPackedBackfill                              // with CapOpsPerStream: ops with OpHeader.Summarized share a stream too
	CapSummariesPerStream                          // several Summary frames on one op stream (MaxOpsPerStream)
)

// Has reports whether every capability in o is set in c.
func (c Capabilities) Has(o Capabilities) bool { return c&o == o }

// maxTime is the latest time a varint of Unix nanoseconds holds (year 2116).
var maxTime = time.Unix(0, int64(quicvarint.Max))

// durationOK reports whether d can be encoded as varint nanoseconds.
func durationOK(d time.Duration) bool { return d >= 0 && uint64(d) <= quicvarint.Max }

// timeNanos encodes a wall-clock time as varint Unix nanoseconds; the zero
// time encodes as 0 and means "none".
func timeNanos(t time.Time) (uint64, bool) {
	if t.IsZero() {
		return 0, true
	}
	// Check the range before UnixNano, which overflows after 2262.
	if t.Before(time.Unix(0, 1)) || t.After(maxTime) {
		return 0, false
	}
	return uint64(t.UnixNano()), true
}

func timeFromNanos(n uint64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(n)).UTC()
}
