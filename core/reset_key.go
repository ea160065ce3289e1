package core

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"

	"github.com/quic-go/quic-go"
)

// resetKeyInfo names the derivation, so that the key serves no other use
// of the same private key.
const resetKeyInfo = "edge-sync/1 QUIC stateless reset key"

// statelessResetKey derives the core's QUIC stateless reset key from its
// TLS private key (HKDF-SHA256 over the key's PKCS #8 encoding), so that
// a core restarted with the same key answers a packet of a connection it
// no longer knows with a stateless reset the agent trusts (RFC 9000
// §10.3): the agent's connection ends at its next packet and it dials
// again, instead of waiting out QUIC's idle timeout (see
// docs/core.md#restarts). The key is secret as long as the TLS key is;
// someone who knows the TLS key can do worse than reset connections.
func statelessResetKey(conf *tls.Config) (*quic.StatelessResetKey, error) {
	if conf == nil || len(conf.Certificates) == 0 || conf.Certificates[0].PrivateKey == nil {
		return nil, errors.New("no certificate with a private key in the TLS config")
	}
	der, err := x509.MarshalPKCS8PrivateKey(conf.Certificates[0].PrivateKey)
	if err != nil {
		return nil, err
	}
	b, err := hkdf.Key(sha256.New, der, nil, resetKeyInfo, len(quic.StatelessResetKey{}))
	if err != nil {
		return nil, err
	}
	var k quic.StatelessResetKey
	copy(k[:], b)
	return &k, nil
}
