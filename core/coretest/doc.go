// Package coretest runs a real core on loopback for the tests of the
// packages that talk to one (agent, agent/control, internal/cli): a store
// in the test's temporary directory, a server with the certificates of a
// testutil.PKI, both stopped and waited for when the test ends (Serve
// alone for a server a test built itself, on a store of its own); and the
// config of an agent that reaches it. StartConn and ServeConn run a core
// on a socket the test holds (testutil.UDPSocket), to start one again on
// it with no moment at which another process could take the port.
//
// # Caveats
//
// It imports core and config, so the tests of those packages, and of
// what they import, cannot use it; core's own tests build their server
// by hand.
package coretest
