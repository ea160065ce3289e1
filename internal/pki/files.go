package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"

	"github.com/edge-sync/edge-sync/internal/atomicfile"
)

// WriteCA writes the CA certificate to certFile (mode 0644) and its key to
// keyFile (mode 0600). Existing files are replaced only if force is set.
func WriteCA(ca *CA, certFile, keyFile string, force bool) error {
	return writePair(ca.Cert, ca.Key, certFile, keyFile, force)
}

// WriteCert writes an issued certificate to certFile (mode 0644) and its key
// to keyFile (mode 0600). Existing files are replaced only if force is set.
func WriteCert(c *Issued, certFile, keyFile string, force bool) error {
	return writePair(c.Cert, c.Key, certFile, keyFile, force)
}

func writePair(cert *x509.Certificate, key *ecdsa.PrivateKey, certFile, keyFile string, force bool) error {
	if !force {
		for _, f := range []string{certFile, keyFile} {
			if _, err := os.Lstat(f); err == nil {
				return fmt.Errorf("write %s: %w (use --force to replace it)", f, ErrExists)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("write %s: %w", f, err)
			}
		}
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("write %s: %w", keyFile, err)
	}
	// Key first: a certificate without its key is useless, a key without its
	// certificate is merely unused.
	if err := atomicfile.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return atomicfile.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o644)
}

// ReadCertFile reads the first certificate in a PEM file.
func ReadCertFile(path string) (*x509.Certificate, error) {
	blk, err := readPEM(path, "certificate", "CERTIFICATE", "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read certificate %s: %w", path, err)
	}
	return c, nil
}

// ReadKeyFile reads an ECDSA private key from a PEM file (PKCS#8 or SEC 1).
func ReadKeyFile(path string) (*ecdsa.PrivateKey, error) {
	blk, err := readPEM(path, "key", "PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	if blk.Type == "EC PRIVATE KEY" {
		k, err := x509.ParseECPrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("read key %s: %w", path, err)
		}
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("read key %s: %w: key is %T, want ECDSA", path, ErrBadPEM, k)
	}
	return ek, nil
}

// readPEM returns the first block of the PEM file at path whose type is
// one of types; what names the file's content in errors, and want the
// block a file without one lacks.
func readPEM(path, what, want string, types ...string) (*pem.Block, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("read %s %s: %w: no %s block", what, path, ErrBadPEM, want)
		}
		if slices.Contains(types, blk.Type) {
			return blk, nil
		}
	}
}

// ReadCA reads a CA certificate and its key, checking that they belong
// together and that the certificate is a CA.
func ReadCA(certFile, keyFile string) (*CA, error) {
	cert, err := ReadCertFile(certFile)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("read ca %s: %w", certFile, ErrNotCA)
	}
	key, err := ReadKeyFile(keyFile)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("read ca: key %s does not match certificate %s", keyFile, certFile)
	}
	return &CA{Cert: cert, Key: key}, nil
}
