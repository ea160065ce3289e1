package cli

import (
	"strings"
	"testing"
)

// TestCoreReadNotFoundSaysWhatToList checks that asking a core for an
// agent, key or event it does not have says which command lists what it
// has, not only "not found".
func TestCoreReadNotFoundSaysWhatToList(t *testing.T) {
	_, cfg := testCoreConfig(t)
	startTestCore(t, cfg)
	dd := cfg.DataDir
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"core", "ls", "--data-dir", dd, "--agent", "ship-8"},
			[]string{`"ship-8"`, "not found", "edge-sync core ls --data-dir " + dd + " lists the agents"}},
		{[]string{"core", "get", "--data-dir", dd, "--agent", "ship-8", "sensors/pump-4"},
			[]string{`"sensors/pump-4"`, "not found", "edge-sync core ls --data-dir " + dd + " --agent ship-8 lists its keys"}},
		{[]string{"core", "get", "--data-dir", dd, "--agent", "ship-8", "--event", "42"},
			[]string{"42", "not found", "edge-sync core ls --data-dir " + dd + " --agent ship-8 --events lists its events"}},
	}
	for _, tc := range cases {
		_, _, err := run(t, tc.args...)
		if err == nil {
			t.Errorf("%q: no error", tc.args)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not contain %q", tc.args, err, w)
			}
		}
	}
}
