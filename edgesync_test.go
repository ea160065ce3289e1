package edgesync

import (
	"fmt"
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
	for in, want := range map[string]SyncMode{"delta-zstd": SyncDeltaZstd, "delta_zstd": SyncDeltaZstd, "FULL_ZSTD": SyncFullZstd, "store_and_forward": SyncStoreAndForward} {
		if m, err := ParseSyncMode(in); err != nil || m != want {
			t.Errorf("ParseSyncMode(%s) = %v, %v; want %v", in, m, err, want)
		}
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

// TestEnumText pins the text forms of the package's enums: names both
// ways, the form of a value without a name, and the errors that name what
// is accepted.
func TestEnumText(t *testing.T) {
	type text interface {
		fmt.Stringer
		MarshalText() ([]byte, error)
	}
	for _, tc := range []struct {
		good, bad     text
		name, badName string
	}{
		{Satellite, LinkClass(9), "satellite", "linkclass(9)"},
		{Analytics, Priority(6), "analytics", "priority(6)"},
		{StateOp, OpKind(0), "state", "opkind(0)"},
		{SyncDeltaZstd, SyncMode(0), "delta+zstd", "syncmode(0)"},
	} {
		if b, err := tc.good.MarshalText(); err != nil || string(b) != tc.name || tc.good.String() != tc.name {
			t.Errorf("%s: MarshalText %q, %v; String %q", tc.name, b, err, tc.good.String())
		}
		if got := tc.bad.String(); got != tc.badName {
			t.Errorf("String of a value without a name: %q, want %q", got, tc.badName)
		}
		if _, err := tc.bad.MarshalText(); err == nil || !strings.HasPrefix(err.Error(), "invalid ") {
			t.Errorf("MarshalText of %s: %v, want an error", tc.badName, err)
		}
	}
	var c LinkClass
	var p Priority
	var k OpKind
	var m SyncMode
	for _, u := range []struct {
		dst  interface{ UnmarshalText([]byte) error }
		text string
		want fmt.Stringer
	}{{&c, " Satellite ", Satellite}, {&p, "4", Analytics}, {&k, "State", StateOp}, {&m, "Delta-Zstd", SyncDeltaZstd}} {
		if err := u.dst.UnmarshalText([]byte(u.text)); err != nil || fmt.Sprint(u.dst) != u.want.String() {
			t.Errorf("UnmarshalText(%q) = %v, %v; want %v", u.text, u.dst, err, u.want)
		}
	}
	for _, e := range []struct {
		err  error
		want string
	}{
		{func() error { _, err := ParseLinkClass("dialup"); return err }(), `unknown link class "dialup" (want one of unknown, fiber, broadband, mobile, satellite, intermittent)`},
		{func() error { _, err := ParsePriority("urgent"); return err }(), `unknown priority "urgent" (want one of critical, schema, high, normal, analytics, background, or 0-5)`},
		{func() error { _, err := ParsePriority("6"); return err }(), `unknown priority "6" (want one of critical, schema, high, normal, analytics, background, or 0-5)`},
		{func() error { _, err := ParseOpKind("blob"); return err }(), `unknown op kind "blob" (want one of event, state)`},
		{func() error { _, err := ParseSyncMode("turbo"); return err }(), `unknown sync mode "turbo" (want one of full, full+zstd, delta, delta+zstd, store-and-forward)`},
		{k.UnmarshalText(nil), `unknown op kind "" (want one of event, state)`},
	} {
		if e.err == nil || e.err.Error() != e.want {
			t.Errorf("error %v, want %s", e.err, e.want)
		}
	}
}
