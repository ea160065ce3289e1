package testutil

import (
	"net"
	"os"
	"testing"
)

// FreeUDPAddr returns a loopback UDP address nothing listens on now, for
// a core a test starts once, at once, in a process that binds it itself
// (the edge-sync binary). The port is free only for the moment: another
// process may take it before the core binds it. A core that never
// answers takes SilentUDPAddr; one started again on the same address,
// UDPSocket.
func FreeUDPAddr(tb testing.TB) string {
	tb.Helper()
	pc := UDPSocket(tb)
	defer pc.Close()
	return pc.LocalAddr().String()
}

// SilentUDPAddr returns the address of a loopback UDP socket that nothing
// reads, held until tb ends: a core that never answers. Held, no other
// process can bind the port and answer the agent's packets.
func SilentUDPAddr(tb testing.TB) string {
	tb.Helper()
	return UDPSocket(tb).LocalAddr().String()
}

// UDPSocket returns a loopback UDP socket on a free port, closed when tb
// ends. Held, its port stays the test's: the address of a core that never
// answers (nothing reads the socket), or the socket a core serves on and
// is started on again after a stop or a SIGKILL (coretest.StartConn,
// UDPSocketFile for a child process), with no moment at which another
// process could bind the port. What arrives while no core serves it waits
// in the socket's buffer for the next core, as a restarted core's port
// receives an agent's packets.
func UDPSocket(tb testing.TB) *net.UDPConn {
	tb.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pc.Close() })
	return pc
}

// UDPSocketFile returns a duplicate of pc's descriptor for a child
// process (exec.Cmd's ExtraFiles; StartChildActivated), closed when tb ends;
// the child takes it with net.FilePacketConn.
func UDPSocketFile(tb testing.TB, pc *net.UDPConn) *os.File {
	tb.Helper()
	f, err := pc.File()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}
