package lane

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

func sampleFeedback() *feedback {
	return &feedback{
		ackDelayMicros: 1234,
		acks:           []numRange{{100, 120}, {90, 97}, {0, 5}},
		window:         1 << 20,
		closedBelow:    7,
		closed:         []numRange{{9, 9}, {11, 15}},
	}
}

func TestFeedbackRoundTrip(t *testing.T) {
	want := sampleFeedback()
	b := appendFeedback(nil, want)
	b = append(b, framePing, frameReset, 42)
	b = appendData(b, &dataFrame{transfer: 3, offset: 0, hasMeta: true, id: opID(1), base: 77, total: 5, urgency: -2, data: []byte("hello")})
	var pp parsedPacket
	if err := parsePacket(b, &pp); err != nil {
		t.Fatal(err)
	}
	got := pp.fb
	if got.ackDelayMicros != want.ackDelayMicros || got.window != want.window || got.closedBelow != want.closedBelow {
		t.Fatalf("feedback scalars: got %+v, want %+v", got, want)
	}
	if len(got.acks) != len(want.acks) || len(got.closed) != len(want.closed) {
		t.Fatalf("ranges: got %v %v, want %v %v", got.acks, got.closed, want.acks, want.closed)
	}
	for i := range want.acks {
		if got.acks[i] != want.acks[i] {
			t.Errorf("ack range %d: got %v, want %v", i, got.acks[i], want.acks[i])
		}
	}
	for i := range want.closed {
		if got.closed[i] != want.closed[i] {
			t.Errorf("closed range %d: got %v, want %v", i, got.closed[i], want.closed[i])
		}
	}
	d := pp.data
	if !pp.ping || len(pp.resets) != 1 || pp.resets[0] != 42 || !pp.hasData || !d.hasMeta ||
		d.transfer != 3 || d.base != 77 || d.total != 5 || d.urgency != -2 || d.id != opID(1) || !bytes.Equal(d.data, []byte("hello")) {
		t.Fatalf("parsed %+v", pp)
	}
}

// TestParseRejects: every strict prefix of a feedback frame, a data frame
// cut inside its header or meta, unknown frame types and over-limit
// counts are errors wrapping ErrMalformed.
func TestParseRejects(t *testing.T) {
	var pp parsedPacket
	fb := appendFeedback(nil, sampleFeedback())
	for n := 1; n < len(fb); n++ {
		if err := parsePacket(fb[:n], &pp); !errors.Is(err, ErrMalformed) {
			t.Errorf("feedback cut at %d of %d: err %v", n, len(fb), err)
		}
	}
	data := appendData(nil, &dataFrame{hasMeta: true, total: 1, data: []byte{1}})
	for n := 1; n < dataHeaderLen+metaLen; n++ {
		if err := parsePacket(data[:n], &pp); !errors.Is(err, ErrMalformed) {
			t.Errorf("data cut at %d: err %v", n, err)
		}
	}
	tooMany := appendFeedback(nil, &feedback{acks: make([]numRange, maxAckRanges+1)})
	cases := map[string][]byte{
		"unknown frame":   {0x7f},
		"bad data flags":  {frameData, 0x80, 0, 0, 0, 0, 0, 0, 0, 0},
		"too many ranges": tooMany,
		"no ack ranges":   {frameFeedback, 0, 0},
		"two feedbacks":   append(append([]byte(nil), fb...), fb...),
	}
	for name, b := range cases {
		if err := parsePacket(b, &pp); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzParsePacket(f *testing.F) {
	f.Add(appendFeedback(nil, sampleFeedback()))
	f.Add(appendData(nil, &dataFrame{hasMeta: true, total: 3, data: []byte("abc")}))
	f.Add([]byte{framePing, frameReset, 5})
	f.Fuzz(func(t *testing.T, b []byte) {
		var pp parsedPacket
		if parsePacket(b, &pp) != nil || !pp.hasFeedback {
			return
		}
		if len(pp.fb.acks) > maxAckRanges || len(pp.fb.closed) > maxClosedRanges {
			t.Fatalf("over limit: %d acks, %d closed", len(pp.fb.acks), len(pp.fb.closed))
		}
		for i, r := range pp.fb.acks {
			if r.lo > r.hi || (i > 0 && r.hi+1 >= pp.fb.acks[i-1].lo) {
				t.Fatalf("ack ranges not descending and disjoint: %v", pp.fb.acks)
			}
		}
		prev := pp.fb.closedBelow
		for _, r := range pp.fb.closed {
			if r.lo <= prev || r.lo > r.hi || r.hi > 1<<32 {
				t.Fatalf("closed ranges not ascending above %d and bounded: %v", pp.fb.closedBelow, pp.fb.closed)
			}
			prev = r.hi
		}
	})
}

// TestSealOpen: a sealed packet opens under the peer's sealer only, and
// any flipped bit fails.
func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	tag := [tagLen]byte{1, 2, 3, 4, 5, 6}
	a, err := newSealer(key, 0, tag)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := newSealer(key, 1, tag) // other direction: other nonces
	p := a.seal(nil, 99, []byte{framePing})
	if p[0] != KindPacket || len(p) != headerLen+1+aeadOverhead {
		t.Fatalf("sealed packet %x", p)
	}
	pn, plain, ok := a.open(nil, p)
	if !ok || pn != 99 || !bytes.Equal(plain, []byte{framePing}) {
		t.Fatalf("open: %v %d %x", ok, pn, plain)
	}
	if _, _, ok := other.open(nil, p); ok {
		t.Fatal("opened under the other direction's nonce")
	}
	for i := range p {
		q := append([]byte(nil), p...)
		q[i] ^= 1
		if _, _, ok := a.open(nil, q); ok {
			t.Fatalf("flipped byte %d still opens", i)
		}
	}
}

// TestParseFeedbackNoWrap: ranges whose varints would wrap around 2^64 are
// refused, not read as overlapping or unordered ranges (found by
// FuzzParsePacket: a gap of 2^64-1 made two ack ranges adjacent).
func TestParseFeedbackNoWrap(t *testing.T) {
	max := ^uint64(0)
	for _, tc := range []struct {
		name string
		vals []uint64 // the feedback frame's varints after its type
	}{
		{"ack gap wraps", []uint64{0, 2, 120, 20, max, 7, 0, 0, 0}},
		{"ack gap wraps to overlap", []uint64{0, 2, 120, 20, max - 1, 7, 0, 0, 0}},
		{"closed distance wraps", []uint64{0, 1, 10, 0, 0, 5, 1, max, 0}},
		{"closed length wraps", []uint64{0, 1, 10, 0, 0, 5, 1, 1, max}},
		{"closed below beyond transfers", []uint64{0, 1, 10, 0, 0, max, 1, 2, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := []byte{frameFeedback}
			for _, v := range tc.vals {
				b = binary.AppendUvarint(b, v)
			}
			var pp parsedPacket
			if err := parsePacket(b, &pp); !errors.Is(err, ErrMalformed) {
				t.Fatalf("parsed %+v with error %v, want ErrMalformed", pp.fb, err)
			}
		})
	}
}
