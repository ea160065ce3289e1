package wire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
)

// Probe packet layout: a probe-class frame sent as a raw UDP packet outside
// QUIC, on the same socket (quic.Transport.WriteTo / ReadNonQUICPacket).
//
//	magic (1 byte, 0x2e: top two bits 0, so QUIC hands it to ReadNonQUICPacket)
//	session (8 bytes, big-endian; from Welcome.ProbeSession)
//	frame (one probe-class frame)
//	tag (16 bytes: HMAC-SHA256 over everything before it, truncated)
const (
	// ProbeMagic is the first byte of every probe packet.
	ProbeMagic byte = 0x2e
	// ProbeTagLen is the length of the truncated HMAC-SHA256 tag.
	ProbeTagLen = 16
	// probeHeaderLen is magic plus session.
	probeHeaderLen = 1 + 8
	// MaxProbePacketSize is the largest sealed probe packet: it fits a
	// 1280-byte IPv6 path after the IP and UDP headers.
	MaxProbePacketSize = probeHeaderLen + MaxProbeFrameSize + ProbeTagLen
)

// probeKeyLabel is the TLS exporter label for probe keys (RFC 8446 7.5).
const probeKeyLabel = "EXPORTER-edge-sync-probe"

// ProbeKey authenticates the probe packets of one connection. Both sides
// derive it from the connection's TLS session (DeriveProbeKey); it never
// travels on the wire.
type ProbeKey struct {
	Session uint64   // Welcome.ProbeSession
	Secret  [32]byte // HMAC-SHA256 key
}

// KeyExporter is what DeriveProbeKey needs from a TLS connection;
// *tls.ConnectionState implements it (take the address of
// quic.Conn.ConnectionState().TLS).
type KeyExporter interface {
	ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error)
}

// DeriveProbeKey derives the probe key of a session from the TLS keying
// material exporter, so that both ends hold the same key without sending it.
func DeriveProbeKey(tls KeyExporter, session uint64) (ProbeKey, error) {
	k := ProbeKey{Session: session}
	var ctx [8]byte
	binary.BigEndian.PutUint64(ctx[:], session)
	m, err := tls.ExportKeyingMaterial(probeKeyLabel, ctx[:], len(k.Secret))
	if err != nil {
		return ProbeKey{}, fmt.Errorf("derive probe key: %w", err)
	}
	copy(k.Secret[:], m)
	return k, nil
}

func (k *ProbeKey) mac() hash.Hash { return hmac.New(sha256.New, k.Secret[:]) }

// AppendProbe appends f, sealed as a probe packet under key, to b. Only
// probe-class frames (FrameType.IsProbe) may be sealed.
func AppendProbe(b []byte, key ProbeKey, f Frame) ([]byte, error) {
	if !f.Type().IsProbe() {
		return b, fmt.Errorf("seal probe: %s: %w", f.Type(), ErrNotProbe)
	}
	if n := f.Len(); n > MaxProbeFrameSize {
		return b, fmt.Errorf("seal probe: %s of %d bytes, limit %d: %w", f.Type(), n, MaxProbeFrameSize, ErrFrameTooLarge)
	}
	start := len(b)
	b = append(b, ProbeMagic)
	b = binary.BigEndian.AppendUint64(b, key.Session)
	b, err := f.Append(b)
	if err != nil {
		return b[:start], fmt.Errorf("seal probe: %w", err)
	}
	m := key.mac()
	m.Write(b[start:])
	var sum [sha256.Size]byte
	return append(b, m.Sum(sum[:0])[:ProbeTagLen]...), nil
}

// SealProbe returns f sealed as a probe packet under key.
func SealProbe(key ProbeKey, f Frame) ([]byte, error) {
	return AppendProbe(make([]byte, 0, probeHeaderLen+f.Len()+ProbeTagLen), key, f)
}

// IsProbePacket reports whether b looks like a probe packet (leading byte
// and minimum length); it does not check the tag.
func IsProbePacket(b []byte) bool {
	return len(b) >= probeHeaderLen+2+ProbeTagLen && b[0] == ProbeMagic
}

// ProbeSessionOf returns the session named in a probe packet, so a receiver
// serving many connections can find the key to open it with.
func ProbeSessionOf(packet []byte) (uint64, error) {
	if !IsProbePacket(packet) {
		return 0, fmt.Errorf("probe session: %d-byte packet is no probe packet: %w", len(packet), ErrProbeAuth)
	}
	return binary.BigEndian.Uint64(packet[1:probeHeaderLen]), nil
}

// OpenProbe checks a probe packet's tag under key and parses the frame in
// it. A packet that is not one (wrong leading byte, too short, another
// session, a wrong tag) gives ErrProbeAuth; the tag is checked before any
// parsing. Tags do not stop replays: receivers drop repeated (train, index)
// or ping sequence numbers themselves.
func OpenProbe(key ProbeKey, packet []byte) (Frame, error) {
	if len(packet) > MaxProbePacketSize {
		return nil, fmt.Errorf("open probe: %d-byte packet, limit %d: %w", len(packet), MaxProbePacketSize, ErrFrameTooLarge)
	}
	s, err := ProbeSessionOf(packet)
	if err != nil {
		return nil, err
	}
	if s != key.Session {
		return nil, fmt.Errorf("open probe: session %#x, want %#x: %w", s, key.Session, ErrProbeAuth)
	}
	body, tag := packet[:len(packet)-ProbeTagLen], packet[len(packet)-ProbeTagLen:]
	m := key.mac()
	m.Write(body)
	var sum [sha256.Size]byte
	if !hmac.Equal(m.Sum(sum[:0])[:ProbeTagLen], tag) {
		return nil, fmt.Errorf("open probe: tag mismatch: %w", ErrProbeAuth)
	}
	f, n, err := Parse(body[probeHeaderLen:])
	if err != nil {
		return nil, fmt.Errorf("open probe: %w", err)
	}
	if !f.Type().IsProbe() {
		return nil, fmt.Errorf("open probe: %s: %w", f.Type(), ErrNotProbe)
	}
	if rest := len(body) - probeHeaderLen - n; rest != 0 {
		return nil, fmt.Errorf("open probe: %d bytes after the frame: %w", rest, ErrMalformedFrame)
	}
	return f, nil
}
