package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edge-sync/edge-sync/internal/pki"
)

// This file is what `--check-config` checks beyond Validate: the things a
// start would trip over on this machine. Validate looks at values; Check
// reads the files they name, resolves the addresses and tries the data
// directory, so that a config it passes does not fail at start for a
// reason it could have seen.

// MinTokenLength is the shortest bearer token the control API accepts on
// its TCP listener (docs/control-api.md).
const MinTokenLength = 16

// Check checks the agent's config against this machine: its TLS files
// load and its certificate is a client certificate signed by its CA; the
// control API's token file holds a token of at least MinTokenLength
// characters; metrics.listen resolves; the data directory (and the
// outbox's) can be created and written. It changes nothing.
func (a *Agent) Check() error {
	l := &errorList{}
	a.TLS.check(l, "tls.", x509.ExtKeyUsageClientAuth)
	if a.Control.TCP != "" && a.Control.TokenFile != "" {
		checkToken(l, "control.token_file", a.Control.TokenFile)
	}
	checkTCPAddr(l, "metrics.listen", a.Metrics.Listen)
	checkWritableDir(l, "data_dir", a.DataDir)
	if a.Outbox.Path != "" {
		checkWritableDir(l, "outbox.path", filepath.Dir(a.Outbox.Path))
	}
	return l.err()
}

// Check checks the core's config against this machine: its TLS files load
// and its certificate is a server certificate signed by its CA; listen
// and metrics.listen resolve; the data directory (and the store file's)
// can be created and written; a JetStream store's TLS files and
// credentials can be read. It connects to nothing and changes nothing.
func (c *Core) Check() error {
	l := &errorList{}
	c.TLS.check(l, "tls.", x509.ExtKeyUsageServerAuth)
	if _, err := net.ResolveUDPAddr("udp", c.Listen); err != nil {
		l.addf("listen", "%q does not resolve: %v", c.Listen, err)
	}
	checkTCPAddr(l, "metrics.listen", c.Metrics.Listen)
	checkWritableDir(l, "data_dir", c.DataDir)
	s := c.Store
	switch s.Backend {
	case BackendBolt:
		if s.Path != "" {
			checkWritableDir(l, "store.path", filepath.Dir(s.Path))
		}
	case BackendJetStream:
		j := s.JetStream
		if j.TLS.CA != "" {
			if _, err := pki.ReadCAFile(j.TLS.CA); err != nil {
				l.add("store.tls.ca", err)
			}
		}
		if j.TLS.Cert != "" && j.TLS.Key != "" {
			if _, err := tls.LoadX509KeyPair(j.TLS.Cert, j.TLS.Key); err != nil {
				l.addf("store.tls.cert", "load %s, %s: %v", j.TLS.Cert, j.TLS.Key, err)
			}
		}
		for _, f := range []struct{ name, path string }{{"store.credentials", j.Credentials}, {"store.nkey", j.NKey}} {
			if f.path == "" {
				continue
			}
			if _, err := os.ReadFile(f.path); err != nil {
				l.add(f.name, err)
			}
		}
	}
	return l.err()
}

// check loads the CA, the certificate and its key, and verifies that the
// certificate is signed by the CA, valid now, and usable for usage.
func (t TLS) check(l *errorList, p string, usage x509.ExtKeyUsage) {
	pool, caErr := pki.ReadCAFile(t.CA)
	if caErr != nil {
		l.add(p+"ca", caErr)
	}
	pair, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		l.addf(p+"cert", "load %s with key %s: %v", t.Cert, t.Key, err)
		return
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		l.addf(p+"cert", "%s: %v", t.Cert, err)
		return
	}
	now := time.Now()
	switch {
	case now.After(leaf.NotAfter):
		l.addf(p+"cert", "%s expired on %s: issue a new one (edge-sync certs --force)", t.Cert, leaf.NotAfter.Format(time.DateOnly))
		return
	case now.Before(leaf.NotBefore):
		l.addf(p+"cert", "%s is not valid before %s: check this machine's clock", t.Cert, leaf.NotBefore.Format(time.RFC3339))
		return
	}
	if caErr != nil {
		return
	}
	inter := x509.NewCertPool()
	for _, der := range pair.Certificate[1:] {
		if c, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(c)
		}
	}
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now})
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &ua):
		l.addf(p+"cert", "%s is not signed by the CA in %s: use a certificate issued by that CA (edge-sync certs --dir DIR uses the CA in DIR), or the CA that issued it", t.Cert, t.CA)
	case err != nil:
		role := "an agent (client)"
		if usage == x509.ExtKeyUsageServerAuth {
			role = "a core (server)"
		}
		l.addf(p+"cert", "%s cannot serve as %s certificate: %v", t.Cert, role, err)
	}
}

// checkToken reads the control API's bearer token file.
func checkToken(l *errorList, field, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		l.add(field, err)
		return
	}
	if n := len(strings.TrimSpace(string(b))); n < MinTokenLength {
		l.addf(field, "the token in %s has %d characters; the control API needs at least %d (e.g. head -c 32 /dev/urandom | base64 > %s)", path, n, MinTokenLength, path)
	}
}

// checkTCPAddr resolves a TCP listen address; "" is off.
func checkTCPAddr(l *errorList, field, addr string) {
	if addr == "" {
		return
	}
	if _, err := net.ResolveTCPAddr("tcp", addr); err != nil {
		l.addf(field, "%q does not resolve: %v", addr, err)
	}
}

// checkWritableDir checks that dir exists and can be written, or can be
// created: a file is created and removed in it, or in its nearest
// existing parent a directory is.
func checkWritableDir(l *errorList, field, dir string) {
	probe := dir
	for {
		fi, err := os.Stat(probe)
		if err == nil {
			if !fi.IsDir() {
				l.addf(field, "%s: %s is not a directory", dir, probe)
				return
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			l.add(field, err)
			return
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			l.addf(field, "%s: no parent directory exists", dir)
			return
		}
		probe = parent
	}
	var err error
	if probe == dir {
		var f *os.File
		if f, err = os.CreateTemp(dir, ".edge-sync-check-*"); err == nil {
			f.Close()
			err = os.Remove(f.Name())
		}
	} else {
		var d string
		if d, err = os.MkdirTemp(probe, ".edge-sync-check-*"); err == nil {
			err = os.Remove(d)
		}
	}
	if err != nil {
		what := "cannot write in"
		if probe != dir {
			what = "cannot be created in"
		}
		l.addf(field, "%s %s %s (user %d): %v", dir, what, probe, os.Getuid(), err)
	}
}
