// Package pki creates and loads the certificates edge-sync uses for mutual
// TLS between agents and the core, so that a first deployment needs no
// openssl.
//
// # Basics
//
// NewCA makes a self-signed ECDSA P-256 certificate authority; (*CA).Issue
// signs a server certificate (for the core, with its DNS names and IP
// addresses) or a client certificate (for an agent, named by its common
// name). WriteCA/WriteCert store them as PEM files, private keys with mode
// 0600, each file written with internal/atomicfile so that a crash never
// leaves a half-written key. ServerTLSConfig and ClientTLSConfig load
// those files into *tls.Config values with TLS 1.3, ALPN "edge-sync/1" and
// mutual verification against the CA. PeerName returns the agent's identity
// from a verified connection.
//
// # Caveats
//
// There is no revocation: to shut an agent out, issue a new CA and new
// certificates, or stop trusting the agent's name at the core. Keys are not
// encrypted at rest; the 0600 mode is the only protection.
package pki
