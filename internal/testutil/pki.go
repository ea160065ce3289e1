package testutil

import (
	"crypto/tls"
	"crypto/x509"
	"path/filepath"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/pki"
)

// CoreName is the name in the core certificate of a PKI; the certificate
// also holds 127.0.0.1 and localhost, so any of the three is a valid
// server name.
const CoreName = "core"

// PKI is a throwaway certificate authority, one core certificate and one
// agent certificate, written as PEM files under Dir.
type PKI struct {
	Dir       string
	CA        *pki.CA
	CAFile    string // ca.pem (its key is ca-key.pem)
	CoreCert  string // core.pem
	CoreKey   string // core-key.pem
	AgentName string
	AgentCert string // agent.pem
	AgentKey  string // agent-key.pem
}

// NewPKI makes a PKI whose agent certificate names agentName, valid for an
// hour, in a new directory under tb.TempDir().
func NewPKI(tb testing.TB, agentName string) *PKI {
	tb.Helper()
	dir := tb.TempDir()
	f := func(name string) string { return filepath.Join(dir, name) }
	p := &PKI{Dir: dir, CAFile: f("ca.pem"), CoreCert: f("core.pem"), CoreKey: f("core-key.pem"),
		AgentName: agentName, AgentCert: f("agent.pem"), AgentKey: f("agent-key.pem")}
	ca, err := pki.NewCA("test-ca", time.Hour)
	if err != nil {
		tb.Fatalf("test pki: %v", err)
	}
	p.CA = ca
	if err := pki.WriteCA(ca, p.CAFile, f("ca-key.pem"), false); err != nil {
		tb.Fatalf("test pki: %v", err)
	}
	core, err := ca.Issue(CoreName, true, []string{"127.0.0.1", "localhost"}, time.Hour)
	if err != nil {
		tb.Fatalf("test pki: %v", err)
	}
	if err := pki.WriteCert(core, p.CoreCert, p.CoreKey, false); err != nil {
		tb.Fatalf("test pki: %v", err)
	}
	agent, err := ca.Issue(agentName, false, nil, time.Hour)
	if err != nil {
		tb.Fatalf("test pki: %v", err)
	}
	if err := pki.WriteCert(agent, p.AgentCert, p.AgentKey, false); err != nil {
		tb.Fatalf("test pki: %v", err)
	}
	return p
}

// ServerTLS is the core's TLS config: its certificate, and every client
// must present one signed by the CA.
func (p *PKI) ServerTLS(tb testing.TB) *tls.Config {
	tb.Helper()
	c, err := pki.ServerTLSConfig(p.CAFile, p.CoreCert, p.CoreKey)
	if err != nil {
		tb.Fatalf("test pki: %v", err)
	}
	return c
}

// ClientTLS is the agent's TLS config for dialling the core as serverName
// (CoreName, "127.0.0.1" or "localhost").
func (p *PKI) ClientTLS(tb testing.TB, serverName string) *tls.Config {
	tb.Helper()
	c, err := pki.ClientTLSConfig(p.CAFile, p.AgentCert, p.AgentKey, serverName)
	if err != nil {
		tb.Fatalf("test pki: %v", err)
	}
	return c
}

// AgentTLS is the TLS config of another agent, named name, with a
// certificate the CA issues now, for dialling the core at 127.0.0.1 with
// ALPN alpn: the many simulated agents of the fleet benchmarks.
func (p *PKI) AgentTLS(tb testing.TB, name, alpn string) *tls.Config {
	tb.Helper()
	issued, err := p.CA.Issue(name, false, nil, time.Hour)
	if err != nil {
		tb.Fatalf("test pki: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.CA.Cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{issued.Cert.Raw}, PrivateKey: issued.Key, Leaf: issued.Cert}},
		RootCAs:      pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13, NextProtos: []string{alpn},
	}
}
