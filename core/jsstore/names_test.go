package jsstore

import (
	"regexp"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// kvKeyToken is what one dot-separated part of a KV key may hold, and is
// also a valid subject token.
var kvKeyToken = regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`)

func TestTokenExamples(t *testing.T) {
	for in, want := range map[string]string{
		"":               "=",
		"sensors/pump-3": "sensors/pump-3",
		"ship.7":         "ship=2E7",
		"a b*>":          "a=20b=2A=3E",
		"=2E":            "=3D2E",
		"é":              "=C3=A9",
	} {
		if got := Token(in); got != want {
			t.Errorf("Token(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat(".", 100) // 300 bytes escaped: hashed
	if got := Token(long); !strings.HasPrefix(got, "==") || len(got) != 66 {
		t.Errorf("Token of a long name = %q", got)
	}
	for _, bad := range []string{"", "==ab", "=2", "=2e", "=41", "a.b", "a b"} {
		if _, ok := ParseToken(bad); ok {
			t.Errorf("ParseToken(%q) accepted a token no name gives", bad)
		}
	}
}

// TestTokenProperties: any name gives a token that is valid in KV keys and
// subjects, short, and names only it; an unhashed token parses back.
func TestTokenProperties(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		a := rapid.String().Draw(rt, "a")
		b := rapid.String().Draw(rt, "b")
		ta, tb := Token(a), Token(b)
		if !kvKeyToken.MatchString(ta) || len(ta) > maxToken {
			rt.Fatalf("Token(%q) = %q: not a valid short token", a, ta)
		}
		if (ta == tb) != (a == b) {
			rt.Fatalf("Token(%q) = %q, Token(%q) = %q", a, ta, b, tb)
		}
		if back, ok := ParseToken(ta); ok != !strings.HasPrefix(ta, "==") || ok && back != a {
			rt.Fatalf("ParseToken(%q) = %q, %v; want %q", ta, back, ok, a)
		}
	})
}
