package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edge-sync/edge-sync/internal/pki"
	"go.uber.org/goleak"
)

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := Run(context.Background(), args, Env{Stdout: &out, Stderr: &out})
	return out.String(), err
}

func TestCertsHappyPath(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := filepath.Join(t.TempDir(), "pki")
	out, err := runCLI(t, "certs", "--dir", dir, "--core", "core.test", "--core-host", "127.0.0.1,localhost", "--agent", "site-1", "--agent", "site-2", "--days", "30")
	if err != nil {
		t.Fatalf("certs: %v\n%s", err, out)
	}
	for _, f := range []string{"ca.pem", "ca-key.pem", "core.pem", "core-key.pem", "agent-site-1.pem", "agent-site-1-key.pem", "agent-site-2.pem", "agent-site-2-key.pem"} {
		p := filepath.Join(dir, f)
		st, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s not written: %v", f, err)
		}
		if strings.HasSuffix(f, "-key.pem") && st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
		if !strings.Contains(out, p) {
			t.Errorf("output does not name %s:\n%s", p, out)
		}
	}
	core, err := pki.ReadCertFile(filepath.Join(dir, "core.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if len(core.IPAddresses) != 1 || core.IPAddresses[0].String() != "127.0.0.1" {
		t.Errorf("core IPs = %v, want [127.0.0.1]", core.IPAddresses)
	}
	// The issued files work together for TLS.
	if _, err := pki.ServerTLSConfig(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "core.pem"), filepath.Join(dir, "core-key.pem")); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.ClientTLSConfig(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "agent-site-1.pem"), filepath.Join(dir, "agent-site-1-key.pem"), "core.test"); err != nil {
		t.Fatal(err)
	}

	// A second run reuses the CA and adds an agent.
	caBefore, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	out, err = runCLI(t, "certs", "--dir", dir, "--agent", "site-3")
	if err != nil {
		t.Fatalf("second certs run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "using existing CA") {
		t.Errorf("second run did not say it reused the CA:\n%s", out)
	}
	caAfter, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if !bytes.Equal(caBefore, caAfter) {
		t.Error("second run replaced the CA")
	}
	ca, err := pki.ReadCertFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	a3, err := pki.ReadCertFile(filepath.Join(dir, "agent-site-3.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a3.CheckSignatureFrom(ca); err != nil {
		t.Errorf("agent-site-3 not signed by the existing CA: %v", err)
	}

	// Existing files are not replaced without --force.
	keyBefore, _ := os.ReadFile(filepath.Join(dir, "agent-site-1-key.pem"))
	_, err = runCLI(t, "certs", "--dir", dir, "--agent", "site-1")
	if !errors.Is(err, pki.ErrExists) {
		t.Fatalf("re-issuing without --force: %v, want ErrExists", err)
	}
	keyAfter, _ := os.ReadFile(filepath.Join(dir, "agent-site-1-key.pem"))
	if !bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("refused run changed agent-site-1-key.pem")
	}
	if out, err := runCLI(t, "certs", "--dir", dir, "--agent", "site-1", "--force"); err != nil {
		t.Fatalf("--force: %v\n%s", err, out)
	}
	keyAfter, _ = os.ReadFile(filepath.Join(dir, "agent-site-1-key.pem"))
	if bytes.Equal(keyBefore, keyAfter) {
		t.Fatal("--force did not replace agent-site-1-key.pem")
	}
}

func TestCertsUsageErrors(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	cases := [][]string{
		{"certs"},
		{"certs", "--agent", "a"},
		{"certs", "--dir", dir},
		{"certs", "--dir", dir, "--agent", "../evil"},
		{"certs", "--dir", dir, "--agent", "a", "--agent", "a"},
		{"certs", "--dir", dir, "--core-host", "1.2.3.4"},
		{"certs", "--dir", dir, "--agent", "a", "--days", "0"},
		{"certs", "--dir", dir, "--agent", "a", "extra"},
		{"certs", "--bogus"},
	}
	for _, args := range cases {
		_, err := runCLI(t, args...)
		if !errors.As(err, new(*UsageError)) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("usage errors wrote files: %v", entries)
	}
	out, err := runCLI(t, "certs", "--help")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "Examples:") || !strings.Contains(out, "--agent") {
		t.Errorf("--help: err %v, output:\n%s", err, out)
	}
}

func TestCertsCAHalfPresent(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := runCLI(t, "certs", "--dir", dir, "--agent", "a")
	if err == nil || errors.As(err, new(*UsageError)) {
		t.Fatalf("ca.pem without ca-key.pem: %v, want a runtime error", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "agent-a.pem")); err == nil {
		t.Fatal("agent certificate written although the CA was broken")
	}
}

func TestCertsRefusalWritesNothing(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	existing := filepath.Join(dir, "agent-a-key.pem")
	if err := os.WriteFile(existing, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runCLI(t, "certs", "--dir", dir, "--core", "c", "--agent", "a")
	if !errors.Is(err, pki.ErrExists) {
		t.Fatalf("got %v, want ErrExists", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("a refused run wrote files: %v", entries)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Fatal("existing key changed")
	}
}
