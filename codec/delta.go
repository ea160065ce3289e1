package codec

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// A delta block is a program that rebuilds the block from its base region:
// a list of ops, each "append lit bytes from the literal stream, move the
// cursor by dd, copy cp bytes from the region at the cursor". The cursor is
// where the block's next byte is expected in the region (block position plus
// an offset), so an edit that keeps the length costs dd = 0 and an insertion
// or deletion of k bytes costs dd = ∓k. The ops (a tag byte each, then
// their extra bytes: see appendOps) and the literal bytes are two streams,
// each stored as it is, as a zstd frame without dictionary or as a bare
// Huffman coding, whichever is smallest (chunk.go, packStream).
//
// Why not a zstd frame with the region as dictionary (the format before
// header version 2): klauspost's matchers are greedy and their hash tables
// keep one or two positions per hash, so on repetitive records they match
// the wrong record and pay for it in offsets and literals; BenchmarkDelta
// measured 1.55× `zstd -19 --patch-from` on JSON and 1.27× on a log, and
// larger blocks made it worse. A matcher that knows the base and the new
// bytes are mostly aligned gets 0.8× and 1.1× (docs/codec.md).
//
//	ops     uvarint count, count tag bytes, then each op's extra bytes;
//	        every op moves (lit + cp > 0)
//	lits    the literal bytes, in order

// Matcher parameters (BenchmarkDelta): a copy at the cursor needs 4 equal
// bytes; one at the cursor moved by up to deltaShift bytes needs 6; one
// found anywhere in the region through the hash table needs deltaMinGlobal,
// so that generic repeats in new text (timestamps, keys) are left to zstd on
// the literal stream instead of fragmenting it into ops. Measured on the
// JSON corpus at 1 MiB blocks: a global minimum of 32 gives 19.4 KB, 48
// gives 14.7 KB, 64 gives 14.8 KB.
const (
	deltaMinLocal  = 4
	deltaShift     = 16
	deltaMinGlobal = 48
	deltaHashLen   = 8
	deltaSkipLog   = 6
	deltaMaxStep   = 32
)

// maxOpsLen bounds a block's ops stream: every op but the last one or two
// copies at least deltaMinLocal bytes, and an op is at most a tag and
// 3+5+3 varint bytes for the sizes the format allows. The decoder refuses a
// stream that decodes to more.
func maxOpsLen(blk int) int { return 3*blk + 64 }

// deltaOps is the encoder's scratch for one block.
type deltaOps struct {
	lit, dd, cp []int32
	lits        []byte
	table       []int32
}

// diff fills o with the ops that rebuild p from region r, where p's first
// byte is expected at r[d0] and the decoder's cursor starts at c0 (the
// first op's dd is relative to it). Deterministic: it depends only on its
// arguments.
func (o *deltaOps) diff(p, r []byte, d0, c0 int) {
	o.lit, o.dd, o.cp, o.lits = o.lit[:0], o.dd[:0], o.cp[:0], o.lits[:0]
	var hbits uint
	if len(r) >= deltaHashLen {
		hbits = uint(max(10, bits.Len(uint(len(r)))-1))
		n := 1 << hbits
		if cap(o.table) < n {
			o.table = make([]int32, n)
		}
		o.table = o.table[:n]
		clear(o.table)
		for i := 0; i+deltaHashLen <= len(r); i++ {
			o.table[deltaHash(r[i:], hbits)] = int32(i + 1)
		}
	}
	cur, emitted := d0, c0 // cursor offset searched with / last one emitted
	s, litStart := 0, 0
	for s < len(p) {
		bestL, next := 0, cur
		for k := 0; k <= 2*deltaShift; k++ {
			d := (k + 1) / 2
			if k%2 == 1 {
				d = -d
			}
			rp := s + cur + d
			if rp < 0 || rp >= len(r) {
				continue
			}
			if s+4 <= len(p) && rp+4 <= len(r) && le32(p[s:]) != le32(r[rp:]) {
				continue // a copy needs at least 4 equal bytes
			}
			need := deltaMinLocal
			if d != 0 {
				need += 2
			}
			if l := matchLen(p[s:], r[rp:]); l >= min(need, len(p)-s) && l > bestL {
				bestL, next = l, cur+d
			}
		}
		if bestL == 0 && hbits > 0 && s+deltaHashLen <= len(p) {
			if c := o.table[deltaHash(p[s:], hbits)]; c > 0 {
				rp := int(c - 1)
				if l := matchLen(p[s:], r[rp:]); l >= deltaMinGlobal {
					bestL, next = l, rp-s
				}
			}
		}
		if bestL == 0 {
			// Long literal runs are new data: look less often, up to every
			// deltaMaxStep bytes; the backward extension below finds where a
			// copy really started.
			s += min(1+(s-litStart)>>deltaSkipLog, deltaMaxStep)
			continue
		}
		for s > litStart && s+next > 0 && p[s-1] == r[s+next-1] {
			s--
			bestL++
		}
		o.lit = append(o.lit, int32(s-litStart))
		o.dd = append(o.dd, int32(next-emitted))
		o.cp = append(o.cp, int32(bestL))
		o.lits = append(o.lits, p[litStart:s]...)
		cur, emitted = next, next
		s += bestL
		litStart = s
	}
	if litStart < len(p) || len(o.cp) == 0 {
		o.lit = append(o.lit, int32(len(p)-litStart))
		o.dd = append(o.dd, 0)
		o.cp = append(o.cp, 0)
		o.lits = append(o.lits, p[litStart:]...)
	}
}

// Op encoding: a tag byte per op, then the op's extra bytes. The tag holds
// lit (bits 0-3; 15: lit-15 follows as uvarint), dd (bits 4-6, dd+3 for dd
// in [-3, 3]; 7: zigzag varint follows) and whether cp is one byte (bit 7)
// or a uvarint. Tags come first as a column, extras after them, so that zstd
// sees runs of alike tags. Every value has one encoding: the short forms
// are used whenever they fit.
const (
	tagLitEsc = 15
	tagDDEsc  = 7
	tagCPByte = 0x80
)

// appendOps appends the ops stream of o to dst.
func (o *deltaOps) appendOps(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(o.lit)))
	for i := range o.lit {
		t := byte(min(o.lit[i], tagLitEsc))
		if dd := o.dd[i]; dd >= -3 && dd <= 3 {
			t |= byte(dd+3) << 4
		} else {
			t |= tagDDEsc << 4
		}
		if o.cp[i] <= 0xff {
			t |= tagCPByte
		}
		dst = append(dst, t)
	}
	for i := range o.lit {
		if o.lit[i] >= tagLitEsc {
			dst = binary.AppendUvarint(dst, uint64(o.lit[i]-tagLitEsc))
		}
		if dd := o.dd[i]; dd < -3 || dd > 3 {
			dst = binary.AppendVarint(dst, int64(dd))
		}
		if o.cp[i] <= 0xff {
			dst = append(dst, byte(o.cp[i]))
		} else {
			dst = binary.AppendUvarint(dst, uint64(o.cp[i]))
		}
	}
	return dst
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

func deltaHash(b []byte, hbits uint) uint32 {
	return uint32((binary.LittleEndian.Uint64(b) * 0x9E3779B185EBCA87) >> (64 - hbits))
}

// matchLen returns the length of the common prefix of a and b.
func matchLen(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for ; i+8 <= n; i += 8 {
		if x := binary.LittleEndian.Uint64(a[i:]) ^ binary.LittleEndian.Uint64(b[i:]); x != 0 {
			return i + bits.TrailingZeros64(x)/8
		}
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// applyOps appends the n bytes rebuilt by the ops stream ops from the literal
// stream lits and the region r to dst, the cursor starting at c0. Every
// field is checked: an op that does not move, reads past a stream, the block
// or the region, or leaves bytes of either stream unused is ErrCorrupt.
func applyOps(dst, ops, lits, r []byte, n int, c0 int64) ([]byte, error) {
	count, ti, err := sliceUvarint(ops, 0, "delta op count", uint64(n))
	if err != nil {
		return dst, err
	}
	if uint64(len(ops)-ti) < count {
		return dst, fmt.Errorf("delta ops: %d tags, stream has %d bytes: %w", count, len(ops)-ti, ErrCorrupt)
	}
	tags := ops[ti : ti+int(count)]
	xi := ti + int(count) // extras cursor
	start := len(dst)
	s, cur, used := 0, c0, 0 // block position, cursor offset, literal bytes used
	for _, t := range tags {
		lit, dd, cp := uint64(t&0x0f), int64(t>>4&7)-3, uint64(0)
		if lit == tagLitEsc {
			var x uint64
			if x, xi, err = sliceUvarint(ops, xi, "delta literal length", uint64(n)); err != nil {
				return dst[:start], err
			}
			lit += x
		}
		if t>>4&7 == tagDDEsc {
			if dd, xi, err = sliceVarint(ops, xi, "delta cursor move", 2*MaxDeltaRegion); err != nil {
				return dst[:start], err
			}
			if dd >= -3 && dd <= 3 {
				return dst[:start], fmt.Errorf("delta cursor move %d escaped: %w", dd, ErrCorrupt)
			}
		}
		if t&tagCPByte != 0 {
			if xi >= len(ops) {
				return dst[:start], fmt.Errorf("delta copy length: ops stream ends: %w", ErrCorrupt)
			}
			cp, xi = uint64(ops[xi]), xi+1
		} else {
			if cp, xi, err = sliceUvarint(ops, xi, "delta copy length", uint64(n)); err != nil {
				return dst[:start], err
			}
			if cp <= 0xff {
				return dst[:start], fmt.Errorf("delta copy length %d not in its short form: %w", cp, ErrCorrupt)
			}
		}
		if lit > uint64(n-s) || cp > uint64(n-s)-lit {
			return dst[:start], fmt.Errorf("delta op at %d rebuilds %d bytes, block has %d left: %w", s, lit+cp, n-s, ErrCorrupt)
		}
		if lit+cp == 0 {
			return dst[:start], fmt.Errorf("delta op at %d copies nothing: %w", s, ErrCorrupt)
		}
		if used+int(lit) > len(lits) {
			return dst[:start], fmt.Errorf("delta op at %d wants %d literal bytes, %d left: %w", s, lit, len(lits)-used, ErrCorrupt)
		}
		dst = append(dst, lits[used:used+int(lit)]...)
		used += int(lit)
		s += int(lit)
		cur += dd
		if cp > 0 {
			rp := int64(s) + cur
			if rp < 0 || rp+int64(cp) > int64(len(r)) {
				return dst[:start], fmt.Errorf("delta copy [%d, %d) outside base region of %d bytes: %w", rp, rp+int64(cp), len(r), ErrCorrupt)
			}
			dst = append(dst, r[rp:rp+int64(cp)]...)
			s += int(cp)
		}
	}
	switch {
	case s != n:
		return dst[:start], fmt.Errorf("delta ops rebuild %d bytes, want %d: %w", s, n, ErrCorrupt)
	case used != len(lits):
		return dst[:start], fmt.Errorf("delta ops use %d of %d literal bytes: %w", used, len(lits), ErrCorrupt)
	case xi != len(ops):
		return dst[:start], fmt.Errorf("delta ops stream has %d bytes after its ops: %w", len(ops)-xi, ErrCorrupt)
	}
	return dst, nil
}

// sliceUvarint reads a minimally encoded uvarint no larger than max from b at
// i and returns it with the index after it.
func sliceUvarint(b []byte, i int, field string, max uint64) (uint64, int, error) {
	var v uint64
	for k := 0; ; k++ {
		if i >= len(b) {
			return 0, i, fmt.Errorf("%s: ops stream ends inside a varint: %w", field, ErrCorrupt)
		}
		c := b[i]
		i++
		if k == binary.MaxVarintLen64-1 && c > 1 {
			return 0, i, fmt.Errorf("%s: varint overflows 64 bits: %w", field, ErrCorrupt)
		}
		v |= uint64(c&0x7f) << (7 * k)
		if c < 0x80 {
			if c == 0 && k > 0 {
				return 0, i, fmt.Errorf("%s: varint not minimally encoded: %w", field, ErrCorrupt)
			}
			break
		}
	}
	if v > max {
		return 0, i, fmt.Errorf("%s %d above %d: %w", field, v, max, ErrCorrupt)
	}
	return v, i, nil
}

// sliceVarint reads a zigzag varint whose magnitude is at most max.
func sliceVarint(b []byte, i int, field string, max uint64) (int64, int, error) {
	u, i, err := sliceUvarint(b, i, field, 2*max+1)
	if err != nil {
		return 0, i, err
	}
	v := int64(u >> 1)
	if u&1 != 0 {
		v = ^v
	}
	return v, i, nil
}
