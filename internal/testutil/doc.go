// Package testutil holds what the tests of every package share: a bounded
// wait for a condition, a throwaway PKI for mutual TLS on loopback, a
// logger into the test log, a check of the lifecycle convention, a
// child process for crash tests, and damage to a file on disk (Damage,
// DamagePageHeader) for the tests of what the outbox and the agent do
// about it.
//
// # Basics
//
// WaitFor polls a condition until it holds and fails the test, naming what
// it waited for, when it has not within a bound; Poll is the same wait for a
// caller that writes its own failure message. Neither is a substitute for an
// event: where a channel, a subscription or a returned value says that the
// thing happened, wait on that instead; poll only for counters and state
// that announce nothing. Within bounds a call that should return at once.
//
// NewPKI makes a CA, a core (server) certificate and an agent (client)
// certificate with internal/pki, as `edge-sync certs` does, and writes them
// as PEM files under the test's temporary directory. ServerTLS and
// ClientTLS load them back with pki.ServerTLSConfig and pki.ClientTLSConfig,
// the functions agent and core use, so tests speak the same mutual TLS as
// a deployment.
//
// Logger gives a component a logger that writes into the test's log under
// -v and discards otherwise.
//
// CheckClose checks what docs/architecture.md#lifecycle asks of Close: a
// second Close succeeds and nothing starts after it. goleak, run by each
// package's TestMain, finds the goroutines a Close left behind.
//
// OpID, Payload and Clock make the ops and the time of store tests
// deterministic: an op ID from a number, bytes from a seed, a clock that
// moves only when told.
//
// Returned waits, within a bound, for the result of something run in its
// own goroutine (a Serve, a command). Buffer holds output that a test
// reads while a logger or a process writes it. ShortTempDir is a
// directory whose path leaves room for a unix socket's name.
//
// StartChild runs the test binary again as a child process whose TestMain
// plays a part chosen by an environment variable: the writer that a crash
// test kills with SIGKILL. StartChildActivated hands it a socket as systemd does.
//
// Main is that TestMain: the child's part when its variable is set, else
// the tests under goleak.
//
// UDPSocket is a loopback UDP socket the test holds until it ends: a core
// stopped or killed is started again on it (coretest.StartConn; in a child
// process, UDPSocketFile), and no other process can take the port between
// the two, as it could a port FreeUDPAddr found free for the moment.
// SilentUDPAddr is the address of such a socket that nothing reads: a
// core that never answers.
//
// A real core for the tests of the packages above it is in core/coretest.
//
// # Caveats
//
// testutil may import internal/pki and no other package of the project
// (hclog, goleak and the standard library besides): every package's tests import
// it, agent and core included, so it must not import them back.
package testutil
