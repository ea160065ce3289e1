package cli

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-sync/edge-sync/internal/testutil"
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
		wantError(t, fmt.Sprintf("%q", tc.args), tc.args, tc.want...)
	}
}

// TestCoreReadJetStreamDownNamesNATS checks that core ls on a JetStream
// core, with no core running and no NATS where store.urls says, points at
// NATS and the field, not only at starting a core.
func TestCoreReadJetStreamDownNamesNATS(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	// No certificates: reading the store needs none.
	hcl := writeCoreHCL(t, filepath.Join(dir, "core.hcl"), demoCoreConfig(dir, ""), `store {
  backend = "jetstream"
  urls = ["`+url+`"]
  timeout = "2s"
}
`)
	_, _, err = run(t, "core", "ls", "--config", hcl)
	if err == nil {
		t.Fatal("core ls with NATS down: no error")
	}
	for _, w := range []string{"is NATS running", url, "store.urls"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}

// TestCoreStartJetStreamDownNamesNATS: the core itself, started with NATS
// not where store.urls says, asks for NATS there.
func TestCoreStartJetStreamDownNamesNATS(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	pkiDir := testCerts(t, filepath.Join(dir, "pki"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "nats://" + ln.Addr().String()
	ln.Close()
	hcl := writeCoreHCL(t, filepath.Join(dir, "core.hcl"), demoCoreConfig(dir, pkiDir), `store {
  backend = "jetstream"
  urls = ["`+url+`"]
  timeout = "2s"
}
`)
	_, _, err = run(t, "core", "--config", hcl)
	if err == nil {
		t.Fatal("core with NATS down started")
	}
	for _, w := range []string{"is NATS running", url, "store.urls"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
}
