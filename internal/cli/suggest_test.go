package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestUnknownCommandSuggests checks that a misspelt or shortened command
// name is answered with the command meant, not only the list of all.
func TestUnknownCommandSuggests(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"ctl", "transport.bandwith.status"}, []string{"did you mean transport.bandwidth.status?"}},
		{[]string{"ctl", "status"}, []string{"did you mean transport.bandwidth.status or transport.budget.status?"}},
		{[]string{"ctl", "transport.outbox.verfy"}, []string{"did you mean transport.outbox.verify?"}},
		{[]string{"agnet"}, []string{"did you mean agent?"}},
		{[]string{"outbox", "verfy"}, []string{"verify, salvage", "did you mean verify?"}},
		{[]string{"core", "salvge"}, []string{"ls, get, tail, verify, salvage", "did you mean salvage?"}},
	}
	for _, tc := range cases {
		wantError(t, fmt.Sprintf("%q", tc.args), tc.args, tc.want...)
	}
}

// TestUsageErrorNamesItsHelp checks that a usage error points at the help
// of the command that was mistyped, where its flags and examples are.
func TestUsageErrorNamesItsHelp(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"put", "--key", "k", "-"}, "Run 'edge-sync put --help'"},
		{[]string{"core", "get", "--data-dir", "x"}, "Run 'edge-sync core get --help'"},
		{[]string{"frobnicate"}, "Run 'edge-sync --help'"},
	}
	for _, tc := range cases {
		var o, e bytes.Buffer
		if code := Main(context.Background(), tc.args, nil, &o, &e); code != 2 {
			t.Errorf("%q: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(e.String(), tc.want) {
			t.Errorf("%q: stderr %q does not contain %q", tc.args, e.String(), tc.want)
		}
	}
}

// wantError runs the command line args, which must fail with an error
// containing each of want; label names the case in failures.
func wantError(t *testing.T, label string, args []string, want ...string) {
	t.Helper()
	_, _, err := run(t, args...)
	if err == nil {
		t.Errorf("%s: no error", label)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not contain %q", label, err, w)
		}
	}
}
