package lane

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"

	"github.com/edge-sync/edge-sync/wire"
)

// Leading bytes. quic-go hands a datagram to ReadNonQUICPacket when the top
// two bits of its first byte are 0, i.e. 0x00-0x3f. The split:
//
//	0x00-0x1f  unassigned
//	0x20-0x2d  lane (0x20 today, the rest reserved for later lane kinds)
//	0x2e       wire.ProbeMagic: the wire package's sealed probe packets
//	0x2f-0x3f  unassigned
const (
	// KindPacket is the leading byte of every lane packet.
	KindPacket byte = 0x20
	// KindFirst and KindLast bound the leading bytes reserved for the lane.
	KindFirst byte = 0x20
	KindLast  byte = 0x2d
)

// The lane's range must end below the wire package's probe packets: this
// constant overflows byte (a compile error) if it does not.
const _ = wire.ProbeMagic - KindLast - 1

// Sizes of the packet layout:
//
//	kind(1) | session tag(6) | packet number(6) | AES-256-GCM(frames) | tag(16)
//
// The header is the AEAD's additional data; the nonce is the 4-byte
// direction followed by the packet number as 8 bytes, so a nonce never
// repeats under one key.
const (
	tagLen       = 6
	pnLen        = 6
	headerLen    = 1 + tagLen + pnLen
	aeadOverhead = 16
	// DefaultPacketSize is the UDP payload size of a full lane packet: the
	// same as quic-go's packets before path MTU discovery.
	DefaultPacketSize = 1280
	// MaxPacketSize is the largest UDP payload the lane sends or accepts.
	MaxPacketSize = 1452
	// MinPacketSize is the smallest configurable packet size.
	MinPacketSize = 512
	maxPN         = 1<<(8*pnLen) - 1
)

// Frame types inside the sealed payload.
const (
	frameData     byte = 0x01 // data of one transfer; always the last frame
	frameFeedback byte = 0x02 // acknowledgements, window, closed transfers
	frameReset    byte = 0x03 // the sender abandoned a transfer
	framePing     byte = 0x04 // asks for feedback
)

// Data frame layout: type(1) flags(1) transfer(4) offset(4) [meta] data...
// meta (flag metaFlag, only on the transfer's first segment):
// id(16) base(8) total(4) urgency(1).
const (
	metaFlag      = 0x01
	dataHeaderLen = 1 + 1 + 4 + 4
	metaLen       = 16 + 8 + 4 + 1
)

// Limits on what is read from the network.
const (
	maxAckRanges    = 64 // ranges per feedback frame
	maxClosedRanges = 80 // closed-transfer ranges per feedback frame
	maxResets       = 32 // reset frames per packet
)

type sealer struct {
	aead cipher.AEAD
	dir  uint32 // direction of the packets this sealer seals or opens
	tag  [tagLen]byte
}

func newSealer(key []byte, dir uint32, tag [tagLen]byte) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("new sealer: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("new sealer: %w", err)
	}
	return &sealer{aead: aead, dir: dir, tag: tag}, nil
}

func (s *sealer) nonce(pn uint64) [12]byte {
	var n [12]byte
	binary.BigEndian.PutUint32(n[:4], s.dir)
	binary.BigEndian.PutUint64(n[4:], pn)
	return n
}

// seal appends the sealed packet with plaintext frames to dst.
func (s *sealer) seal(dst []byte, pn uint64, frames []byte) []byte {
	start := len(dst)
	dst = append(dst, KindPacket)
	dst = append(dst, s.tag[:]...)
	dst = appendUint48(dst, pn)
	n := s.nonce(pn)
	return s.aead.Seal(dst, n[:], frames, dst[start:])
}

// open authenticates p and returns its packet number and plaintext frames,
// decrypted into dst.
func (s *sealer) open(dst, p []byte) (uint64, []byte, bool) {
	if len(p) < headerLen+aeadOverhead || len(p) > MaxPacketSize {
		return 0, nil, false
	}
	pn := readUint48(p[1+tagLen:])
	n := s.nonce(pn)
	out, err := s.aead.Open(dst, n[:], p[headerLen:], p[:headerLen])
	if err != nil {
		return 0, nil, false
	}
	return pn, out, true
}

// packetTag returns the session tag of a lane packet.
func packetTag(p []byte) ([tagLen]byte, bool) {
	var t [tagLen]byte
	if len(p) < headerLen+aeadOverhead {
		return t, false
	}
	copy(t[:], p[1:1+tagLen])
	return t, true
}

func appendUint48(b []byte, v uint64) []byte {
	return append(b, byte(v>>40), byte(v>>32), byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func readUint48(b []byte) uint64 {
	return uint64(b[0])<<40 | uint64(b[1])<<32 | uint64(b[2])<<24 | uint64(b[3])<<16 | uint64(b[4])<<8 | uint64(b[5])
}

// dataFrame is one segment of a transfer.
type dataFrame struct {
	transfer uint32
	offset   uint32
	hasMeta  bool
	id       [16]byte
	base     int64
	total    uint32
	urgency  int8
	data     []byte
}

func appendData(b []byte, f *dataFrame) []byte {
	flags := byte(0)
	if f.hasMeta {
		flags = metaFlag
	}
	b = append(b, frameData, flags)
	b = binary.BigEndian.AppendUint32(b, f.transfer)
	b = binary.BigEndian.AppendUint32(b, f.offset)
	if f.hasMeta {
		b = append(b, f.id[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(f.base))
		b = binary.BigEndian.AppendUint32(b, f.total)
		b = append(b, byte(f.urgency))
	}
	return append(b, f.data...)
}

// numRange is an inclusive range [lo, hi].
type numRange struct{ lo, hi uint64 }

// feedback is what a receiver tells the sender.
type feedback struct {
	ackDelayMicros uint64
	acks           []numRange // descending, disjoint
	window         uint64     // free receive buffer in bytes
	closedBelow    uint64     // every transfer < closedBelow is closed
	closed         []numRange // closed transfers above closedBelow, ascending
}

func appendFeedback(b []byte, f *feedback) []byte {
	b = append(b, frameFeedback)
	b = binary.AppendUvarint(b, f.ackDelayMicros)
	b = binary.AppendUvarint(b, uint64(len(f.acks)))
	prevLo := uint64(0)
	for i, r := range f.acks {
		if i == 0 {
			b = binary.AppendUvarint(b, r.hi)
		} else {
			b = binary.AppendUvarint(b, prevLo-r.hi-2) // gap: prevLo > r.hi+1
		}
		b = binary.AppendUvarint(b, r.hi-r.lo)
		prevLo = r.lo
	}
	b = binary.AppendUvarint(b, f.window)
	b = binary.AppendUvarint(b, f.closedBelow)
	b = binary.AppendUvarint(b, uint64(len(f.closed)))
	prevHi := f.closedBelow
	for _, r := range f.closed {
		b = binary.AppendUvarint(b, r.lo-prevHi) // lo ≥ closedBelow+1 > prevHi
		b = binary.AppendUvarint(b, r.hi-r.lo)
		prevHi = r.hi
	}
	return b
}

// frameParser walks the plaintext of one packet.
type frameParser struct {
	b   []byte
	err error
}

func (p *frameParser) uvarint() uint64 {
	if p.err != nil {
		return 0
	}
	v, n := binary.Uvarint(p.b)
	if n <= 0 {
		p.err = fmt.Errorf("%w: bad varint", ErrMalformed)
		return 0
	}
	p.b = p.b[n:]
	return v
}

func (p *frameParser) parseFeedback(f *feedback) {
	f.ackDelayMicros = p.uvarint()
	n := p.uvarint()
	if p.err == nil && (n == 0 || n > maxAckRanges) {
		p.err = fmt.Errorf("%w: %d ack ranges (1..%d)", ErrMalformed, n, maxAckRanges)
		return
	}
	f.acks = f.acks[:0]
	var prevLo uint64
	for i := uint64(0); i < n && p.err == nil; i++ {
		var hi uint64
		if i == 0 {
			hi = p.uvarint()
		} else {
			gap := p.uvarint()
			if prevLo < 2 || gap > prevLo-2 { // gap+2 > prevLo, without wrapping
				p.err = fmt.Errorf("%w: ack gap below zero", ErrMalformed)
				return
			}
			hi = prevLo - gap - 2
		}
		l := p.uvarint()
		if l > hi || hi > maxPN {
			p.err = fmt.Errorf("%w: ack range out of bounds", ErrMalformed)
			return
		}
		f.acks = append(f.acks, numRange{hi - l, hi})
		prevLo = hi - l
	}
	f.window = p.uvarint()
	f.closedBelow = p.uvarint()
	n = p.uvarint()
	if p.err == nil && n > maxClosedRanges {
		p.err = fmt.Errorf("%w: %d closed ranges (max %d)", ErrMalformed, n, maxClosedRanges)
		return
	}
	f.closed = f.closed[:0]
	prevHi := f.closedBelow
	for i := uint64(0); i < n && p.err == nil; i++ {
		d := p.uvarint()
		l := p.uvarint()
		if d == 0 || prevHi > 1<<32 || d > 1<<32 || l > 1<<32 || prevHi+d+l > 1<<32 { // each bounded first: no wrap
			p.err = fmt.Errorf("%w: closed range out of bounds", ErrMalformed)
			return
		}
		f.closed = append(f.closed, numRange{prevHi + d, prevHi + d + l})
		prevHi += d + l
	}
}

func (p *frameParser) parseData(f *dataFrame) {
	if len(p.b) < dataHeaderLen-1 {
		p.err = fmt.Errorf("%w: short data frame", ErrMalformed)
		return
	}
	flags := p.b[0]
	f.transfer = binary.BigEndian.Uint32(p.b[1:])
	f.offset = binary.BigEndian.Uint32(p.b[5:])
	p.b = p.b[dataHeaderLen-1:]
	f.hasMeta = flags&metaFlag != 0
	if flags&^metaFlag != 0 {
		p.err = fmt.Errorf("%w: data flags %#x", ErrMalformed, flags)
		return
	}
	if f.hasMeta {
		if len(p.b) < metaLen {
			p.err = fmt.Errorf("%w: short data meta", ErrMalformed)
			return
		}
		copy(f.id[:], p.b)
		f.base = int64(binary.BigEndian.Uint64(p.b[16:]))
		f.total = binary.BigEndian.Uint32(p.b[24:])
		f.urgency = int8(p.b[28])
		p.b = p.b[metaLen:]
		if f.base < 0 {
			p.err = fmt.Errorf("%w: negative base offset", ErrMalformed)
			return
		}
	}
	f.data = p.b
	p.b = nil
	if uint64(f.offset)+uint64(len(f.data)) > 1<<32-1 {
		p.err = fmt.Errorf("%w: data beyond 4 GiB", ErrMalformed)
	}
}

// parsedPacket is the content of one packet.
type parsedPacket struct {
	hasData     bool
	data        dataFrame
	hasFeedback bool
	fb          feedback
	resets      []uint32
	ping        bool
}

// elicits reports whether the packet asks for feedback.
func (pp *parsedPacket) elicits() bool { return pp.hasData || len(pp.resets) > 0 || pp.ping }

func parsePacket(b []byte, pp *parsedPacket) error {
	pp.hasData, pp.hasFeedback, pp.ping = false, false, false
	pp.resets = pp.resets[:0]
	p := frameParser{b: b}
	for len(p.b) > 0 && p.err == nil {
		t := p.b[0]
		p.b = p.b[1:]
		switch t {
		case frameData:
			pp.hasData = true
			p.parseData(&pp.data)
		case frameFeedback:
			if pp.hasFeedback {
				return fmt.Errorf("%w: two feedback frames", ErrMalformed)
			}
			pp.hasFeedback = true
			p.parseFeedback(&pp.fb)
		case frameReset:
			v := p.uvarint()
			if v > 1<<32-1 || len(pp.resets) >= maxResets {
				return fmt.Errorf("%w: reset frame", ErrMalformed)
			}
			pp.resets = append(pp.resets, uint32(v))
		case framePing:
			pp.ping = true
		default:
			return fmt.Errorf("%w: frame type %#x", ErrMalformed, t)
		}
	}
	return p.err
}
