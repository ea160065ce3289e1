package edgesync

import (
	"strings"
	"testing"
	"time"
)

func TestPriorityParseRoundTrip(t *testing.T) {
	for _, p := range Priorities() {
		got, err := ParsePriority(p.String())
		if err != nil || got != p {
			t.Fatalf("ParsePriority(%q) = %v, %v", p.String(), got, err)
		}
		got, err = ParsePriority(string(rune('0' + p)))
		if err != nil || got != p {
			t.Fatalf("ParsePriority(digit %d) = %v, %v", p, got, err)
		}
	}
	for _, bad := range []string{"", "urgent", "6", "-1"} {
		if _, err := ParsePriority(bad); err == nil {
			t.Errorf("ParsePriority(%q) succeeded, want error", bad)
		}
	}
	if !Critical.SendsAtOnce() || !Schema.SendsAtOnce() || High.SendsAtOnce() {
		t.Error("only critical and schema send at once")
	}
}

func TestLinkClassAndModeParse(t *testing.T) {
	for _, c := range LinkClasses() {
		got, err := ParseLinkClass(c.String())
		if err != nil || got != c {
			t.Fatalf("ParseLinkClass(%q) = %v, %v", c, got, err)
		}
	}
	if _, err := ParseLinkClass("dialup"); err == nil {
		t.Error("ParseLinkClass(dialup) succeeded")
	}
	for _, m := range SyncModes() {
		got, err := ParseSyncMode(m.String())
		if err != nil || got != m {
			t.Fatalf("ParseSyncMode(%q) = %v, %v", m, got, err)
		}
	}
	if m, err := ParseSyncMode("delta-zstd"); err != nil || m != SyncDeltaZstd {
		t.Errorf("ParseSyncMode(delta-zstd) = %v, %v", m, err)
	}
	if _, err := ParseSyncMode("turbo"); err == nil {
		t.Error("ParseSyncMode(turbo) succeeded")
	}
}

func TestIDGeneratorMonotonicWhenClockStepsBack(t *testing.T) {
	g := NewIDGenerator()
	clock := time.Unix(1_800_000_000, 0)
	g.nowFn = func() time.Time { return clock }
	a := g.Next()
	clock = clock.Add(-time.Hour)
	b := g.Next()
	if b.Compare(a) <= 0 {
		t.Fatalf("id after clock step back %s not after %s", b, a)
	}
	g2 := NewIDGenerator()
	g2.nowFn = func() time.Time { return clock }
	g2.Observe(b)
	if c := g2.Next(); c.Compare(b) <= 0 {
		t.Fatalf("seeded generator gave %s, not after observed %s", c, b)
	}
	p, err := ParseOpID(a.String())
	if err != nil || p != a {
		t.Fatalf("ParseOpID round trip: %v, %v", p, err)
	}
	if _, err := ParseOpID("xyz"); err == nil {
		t.Error("ParseOpID(xyz) succeeded")
	}
	if !a.Time().Equal(time.Unix(1_800_000_000, 0)) {
		t.Errorf("Time() = %v", a.Time())
	}
}

func TestOpKind(t *testing.T) {
	// The numbers are the wire's (wire.OpHeader carries them as they are).
	if EventOp != 1 || StateOp != 2 {
		t.Fatalf("EventOp = %d, StateOp = %d; want 1 and 2", EventOp, StateOp)
	}
	for _, k := range OpKinds() {
		if !k.Valid() {
			t.Errorf("%s is not Valid", k)
		}
		got, err := ParseOpKind(strings.ToUpper(k.String()))
		if err != nil || got != k {
			t.Fatalf("ParseOpKind(%q) = %v, %v", strings.ToUpper(k.String()), got, err)
		}
		text, err := k.MarshalText()
		if err != nil {
			t.Fatalf("%d.MarshalText: %v", uint8(k), err)
		}
		var back OpKind
		if err := back.UnmarshalText(text); err != nil || back != k {
			t.Fatalf("UnmarshalText(%q) = %v, %v", text, back, err)
		}
	}
	if EventOp.String() != "event" || StateOp.String() != "state" {
		t.Errorf("String() = %q, %q", EventOp, StateOp)
	}
	for _, bad := range []OpKind{0, 3, 255} {
		if bad.Valid() {
			t.Errorf("OpKind(%d) is Valid", uint8(bad))
		}
		if _, err := bad.MarshalText(); err == nil {
			t.Errorf("OpKind(%d).MarshalText succeeded", uint8(bad))
		}
	}
	if got := OpKind(7).String(); got != "opkind(7)" {
		t.Errorf("OpKind(7).String() = %q", got)
	}
	for _, bad := range []string{"", "events", "1", "log"} {
		_, err := ParseOpKind(bad)
		if err == nil {
			t.Errorf("ParseOpKind(%q) succeeded", bad)
		} else if !strings.Contains(err.Error(), "event, state") {
			t.Errorf("ParseOpKind(%q) error %q does not name the choices", bad, err)
		}
	}
	var k OpKind
	if err := k.UnmarshalText([]byte("bogus")); err == nil || k != 0 {
		t.Errorf("UnmarshalText(bogus) = %v, left %v", err, k)
	}
}
