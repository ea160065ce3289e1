package cli

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestStartErrorsNameTheField starts real core and agent processes' code
// (Run) on an address another socket holds and with a TLS file missing:
// the error must name the config field, and what to do.
func TestStartErrorsNameTheField(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	pkiDir := testCerts(t, filepath.Join(dir, "pki"))
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	busyUDP, busyTCP := udp.LocalAddr().String(), tcp.Addr().String()

	coreHCL := func(name, listen, metrics, ca string) string {
		cfg := demoCoreConfig(dir, pkiDir)
		cfg.Listen, cfg.DataDir, cfg.TLS.CA = listen, filepath.Join(dir, name+".d"), ca
		return writeCoreHCL(t, filepath.Join(dir, name), cfg, `metrics { listen = "`+metrics+`" }`+"\n")
	}
	ca := filepath.Join(pkiDir, "ca.pem")
	agentHCL := writeDemoAgentHCL(t, dir, pkiDir, `endpoint "core" { address = "`+busyUDP+`" }
metrics { listen = "`+busyTCP+`" }`)
	agentNoCA := filepath.Join(dir, "agent-noca.hcl")
	writeFile(t, agentNoCA, strings.Replace(readFile(t, agentHCL), "ca.pem", "nope.pem", 1))
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"core listen in use", []string{"core", "--config", coreHCL("c1.hcl", busyUDP, "127.0.0.1:0", ca)},
			[]string{`listen = "` + busyUDP + `"`, "in use by another process", "stop it or change listen"}},
		{"core metrics in use", []string{"core", "--config", coreHCL("c2.hcl", "127.0.0.1:0", busyTCP, ca)},
			[]string{`metrics.listen = "` + busyTCP + `"`, "in use by another process", "stop it or change metrics.listen"}},
		{"agent metrics in use", []string{"agent", "--config", agentHCL},
			[]string{`metrics.listen = "` + busyTCP + `"`, "in use by another process"}},
		{"core CA missing", []string{"core", "--config", coreHCL("c3.hcl", "127.0.0.1:0", "127.0.0.1:0", filepath.Join(pkiDir, "nope.pem"))},
			[]string{"c3.hcl", "tls", "nope.pem", "--check-config"}},
		{"agent CA missing", []string{"agent", "--config", agentNoCA},
			[]string{"agent-noca.hcl", "tls", "nope.pem", "--check-config"}},
	}
	for _, tc := range cases {
		wantError(t, tc.name, tc.args, tc.want...)
	}
}

// TestStartErrorsGetTheCheck: a start that fails on something
// --check-config would have seen (a data_dir that cannot be a directory)
// says what the check finds, naming the field.
func TestStartErrorsGetTheCheck(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	pkiDir := testCerts(t, filepath.Join(dir, "pki"))
	file := filepath.Join(dir, "file")
	writeFile(t, file, "not a directory")
	cfg := demoCoreConfig(dir, pkiDir)
	cfg.DataDir = file + "/core"
	coreHCL := writeCoreHCL(t, filepath.Join(dir, "core.hcl"), cfg, "")
	agentHCL := writeDemoAgentHCL(t, dir, pkiDir, `endpoint "core" { address = "127.0.0.1:9" }`)
	writeFile(t, agentHCL, strings.Replace(readFile(t, agentHCL), filepath.Join(dir, "agent"), file+"/agent", 1))
	for _, args := range [][]string{{"core", "--config", coreHCL}, {"agent", "--config", agentHCL}} {
		wantError(t, fmt.Sprintf("%q", args), args, "--check-config", "\ndata_dir: ", file+"/")
	}
}
