package cli

import (
	"fmt"
	"net"
	"path/filepath"
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
	hcl, url := natsDownHCL(t, dir, "") // no certificates: reading the store needs none
	wantError(t, "core ls with NATS down", []string{"core", "ls", "--config", hcl}, "is NATS running", url, "store.urls")
}

// TestCoreStartJetStreamDownNamesNATS: the core itself, started with NATS
// not where store.urls says, asks for NATS there.
func TestCoreStartJetStreamDownNamesNATS(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	hcl, url := natsDownHCL(t, dir, testCerts(t, filepath.Join(dir, "pki")))
	wantError(t, "core with NATS down", []string{"core", "--config", hcl}, "is NATS running", url, "store.urls")
}

// natsDownHCL writes dir/core.hcl, the demo core's config with its
// certificates in pkiDir and its store on JetStream at a URL where
// nothing listens, and returns its path and that URL.
func natsDownHCL(t *testing.T, dir, pkiDir string) (hcl, url string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url = "nats://" + ln.Addr().String()
	ln.Close() // nothing listens there now
	hcl = writeCoreHCL(t, filepath.Join(dir, "core.hcl"), demoCoreConfig(dir, pkiDir), `store {
  backend = "jetstream"
  urls = ["`+url+`"]
  timeout = "2s"
}
`)
	return hcl, url
}
