package linkmon

import (
	"errors"
	"strings"
	"testing"
)

// TestParsePinErrorListsNames checks that a misspelt pin is answered with
// the names that would do, so the operator need not look them up.
func TestParsePinErrorListsNames(t *testing.T) {
	_, err := ParsePin("sattelite")
	if !errors.Is(err, ErrInvalidPin) {
		t.Fatalf("ParsePin(sattelite): %v, want ErrInvalidPin", err)
	}
	for _, w := range []string{`"sattelite"`, "auto", "fiber", "satellite", "intermittent", "full+zstd", "delta+zstd", "store-and-forward"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %q", err, w)
		}
	}
}
