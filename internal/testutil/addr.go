package testutil

import (
	"net"
	"testing"
)

// FreeUDPAddr returns a loopback UDP address nothing listens on now: for
// a core a test starts later (in a child process, or again on the same
// address), or for a core that never answers.
func FreeUDPAddr(tb testing.TB) string {
	tb.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().String()
}
