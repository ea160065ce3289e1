// Package testutil holds what the tests of every package share: a bounded
// wait for a condition, a throwaway PKI for mutual TLS on loopback, and
// damage to a file on disk (Damage, DamagePageHeader) for the tests of
// what the outbox and the agent do about it.
//
// # Basics
//
// WaitFor polls a condition until it holds and fails the test, naming what
// it waited for, when it has not within a bound; Poll is the same wait for a
// caller that writes its own failure message. Neither is a substitute for an
// event: where a channel, a subscription or a returned value says that the
// thing happened, wait on that instead; poll only for counters and state
// that announce nothing.
//
// NewPKI makes a CA, a core (server) certificate and an agent (client)
// certificate with internal/pki, as `edge-sync certs` does, and writes them
// as PEM files under the test's temporary directory. ServerTLS and
// ClientTLS load them back with pki.ServerTLSConfig and pki.ClientTLSConfig,
// the functions agent and core use, so tests speak the same mutual TLS as
// a deployment.
//
// # Caveats
//
// testutil may import internal/pki and the standard library only: every
// package's tests import it, agent and core included, so it must not import
// them back.
package testutil
