package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
)

// ServerTLSConfig returns the core's TLS configuration: its certificate from
// certFile/keyFile, and a requirement that every client present a
// certificate signed by the CA in caFile. TLS 1.3 only, ALPN "edge-sync/1".
func ServerTLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	pool, cert, err := loadIdentity(caFile, certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server tls: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{ALPN},
	}, nil
}

// ClientTLSConfig returns an agent's TLS configuration: its certificate from
// certFile/keyFile, verifying the core's certificate against the CA in
// caFile for serverName. TLS 1.3 only, ALPN "edge-sync/1".
func ClientTLSConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	pool, cert, err := loadIdentity(caFile, certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("client tls: %w", err)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{ALPN},
	}, nil
}

// loadIdentity reads what each end of a connection needs: the CA it
// verifies the other end against, and its own certificate and key.
func loadIdentity(caFile, certFile, keyFile string) (*x509.CertPool, tls.Certificate, error) {
	pool, err := ReadCAFile(caFile)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, tls.Certificate{}, fmt.Errorf("load %s, %s: %w", certFile, keyFile, err)
	}
	return pool, cert, nil
}

// ReadCAFile reads every certificate of a PEM file into a pool, the CA a
// peer's certificate is verified against; a file without one is an error.
func ReadCAFile(caFile string) (*x509.CertPool, error) {
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err // names the file and what failed
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("load ca %s: %w", caFile, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("load ca %s: %w: no CERTIFICATE block", caFile, ErrBadPEM)
	}
	return pool, nil
}

// PeerName returns the identity of the peer of a verified connection: the
// common name of its leaf certificate, or its first DNS name if the common
// name is empty.
func PeerName(cs tls.ConnectionState) (string, error) {
	var leaf *x509.Certificate
	if len(cs.VerifiedChains) > 0 && len(cs.VerifiedChains[0]) > 0 {
		leaf = cs.VerifiedChains[0][0]
	}
	if leaf == nil {
		return "", fmt.Errorf("peer name: %w", ErrNoPeerCert)
	}
	if leaf.Subject.CommonName != "" {
		return leaf.Subject.CommonName, nil
	}
	if len(leaf.DNSNames) > 0 {
		return leaf.DNSNames[0], nil
	}
	return "", fmt.Errorf("peer name: %w", ErrNoName)
}
