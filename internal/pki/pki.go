package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

// ALPN is the application protocol edge-sync speaks over TLS.
const ALPN = "edge-sync/1"

// Errors returned by this package; test with errors.Is.
var (
	// ErrNoPeerCert means the connection carried no verified client certificate.
	ErrNoPeerCert = errors.New("no verified peer certificate")
	// ErrNoName means the peer certificate has neither a common name nor a DNS name.
	ErrNoName = errors.New("peer certificate has no name")
	// ErrBadPEM means a file did not hold the PEM block that was expected.
	ErrBadPEM = errors.New("bad PEM data")
	// ErrExists means a file would have been overwritten.
	ErrExists = errors.New("file exists")
	// ErrNotCA means a certificate loaded as a CA is not a CA.
	ErrNotCA = errors.New("certificate is not a CA")
)

// CA is a certificate authority: its certificate and private key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// Issued is a certificate signed by a CA and its private key.
type Issued struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
}

// clockSkew backdates NotBefore so that peers with slightly slow clocks
// accept a certificate issued a moment ago.
const clockSkew = 5 * time.Minute

// NewCA creates a self-signed CA named name, valid for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	if name == "" {
		return nil, errors.New("new ca: empty name")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("new ca: validity %v must be positive", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new ca: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("new ca: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"edge-sync"}},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("new ca: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new ca: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Issue signs a certificate for name. A server certificate (isServer) is
// for the core and carries hosts as DNS names or IP addresses; a client
// certificate is for an agent, whose identity is name. hosts may be empty
// for a client.
func (ca *CA) Issue(name string, isServer bool, hosts []string, validity time.Duration) (*Issued, error) {
	if name == "" {
		return nil, errors.New("issue: empty name")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("issue %s: validity %v must be positive", name, validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", name, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", name, err)
	}
	now := time.Now()
	notAfter := now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter // a leaf cannot outlive its CA usefully
	}
	tmpl := &x509.Certificate{
		SerialNumber:   serial,
		Subject:        pkix.Name{CommonName: name, Organization: []string{"edge-sync"}},
		NotBefore:      now.Add(-clockSkew),
		NotAfter:       notAfter,
		KeyUsage:       x509.KeyUsageDigitalSignature,
		SubjectKeyId:   keyID(&key.PublicKey),
		AuthorityKeyId: ca.Cert.SubjectKeyId,
	}
	if isServer {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = append(tmpl.DNSNames, name)
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = appendUnique(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", name, err)
	}
	return &Issued{Cert: cert, Key: key}, nil
}

func appendUnique(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func keyID(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(der)
	return sum[:20]
}
