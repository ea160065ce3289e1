package enum

import (
	"errors"
	"testing"
)

var kinds = Names{Short: "kind", First: 1, List: []string{"", "event", "state"}}

// TestNames: values below First and past the list have no name; String,
// Lookup and Want agree with the list.
func TestNames(t *testing.T) {
	for v, want := range map[uint8]string{0: "kind(0)", 1: "event", 2: "state", 3: "kind(3)"} {
		if got := kinds.String(v); got != want {
			t.Errorf("String(%d) = %q, want %q", v, got, want)
		}
		if kinds.Valid(v) != (v == 1 || v == 2) {
			t.Errorf("Valid(%d) = %v", v, kinds.Valid(v))
		}
	}
	if v, ok := kinds.Lookup("state"); !ok || v != 2 {
		t.Errorf(`Lookup("state") = %d, %v; want 2, true`, v, ok)
	}
	for _, bad := range []string{"", "State", "unknown"} {
		if v, ok := kinds.Lookup(bad); ok {
			t.Errorf("Lookup(%q) = %d, want no value", bad, v)
		}
	}
	if w := kinds.Want(); w != "event, state" {
		t.Errorf("Want() = %q", w)
	}
}

// TestUnmarshalText: the parsed value is stored; a parse error leaves dst
// as it was.
func TestUnmarshalText(t *testing.T) {
	bad := errors.New("bad")
	parse := func(s string) (uint8, error) {
		if v, ok := kinds.Lookup(s); ok {
			return v, nil
		}
		return 0, bad
	}
	var v uint8 = 7
	if err := UnmarshalText(&v, []byte("event"), parse); err != nil || v != 1 {
		t.Fatalf("event: %d, %v", v, err)
	}
	if err := UnmarshalText(&v, []byte("nope"), parse); !errors.Is(err, bad) || v != 1 {
		t.Fatalf("nope: %d, %v; want 1 and the parse error", v, err)
	}
}
