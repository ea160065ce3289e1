package cli

import (
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// nextPassed is where passed puts its next descriptors: far above what
// the test process opens, each call its own.
var nextPassed atomic.Int32

// passed puts files where socket activation would put them, consecutive
// descriptors, and returns the first: each a duplicate of files[i],
// closed when t ends unless activationSocketFrom took it.
func passed(t *testing.T, files ...*os.File) int {
	t.Helper()
	first := 1000 + int(nextPassed.Add(int32(len(files)))) - len(files)
	for i, f := range files {
		if err := syscall.Dup3(int(f.Fd()), first+i, syscall.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		fd := first + i
		t.Cleanup(func() { syscall.Close(fd) })
	}
	return first
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestActivationSocket: a UDP socket passed as systemd passes it is the
// one the core serves on (its address, packets sent to it arrive), and
// one passed to another process, or none, leaves the core to bind listen.
func TestActivationSocket(t *testing.T) {
	held := testutil.UDPSocket(t)
	first := passed(t, testutil.UDPSocketFile(t, held))
	pid := os.Getpid()

	pc, err := activationSocketFrom(env(map[string]string{"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": "1"}), pid, first)
	if err != nil {
		t.Fatal(err)
	}
	if pc == nil {
		t.Fatal("no socket taken from a LISTEN_PID that is this process's")
	}
	defer pc.Close()
	if pc.LocalAddr().String() != held.LocalAddr().String() {
		t.Fatalf("socket on %s, want the passed one on %s", pc.LocalAddr(), held.LocalAddr())
	}
	// What a peer sends to the passed socket's port, the core reads.
	peer, err := net.DialUDP("udp", nil, held.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	if _, err := peer.Write([]byte("initial")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, _, err := pc.ReadFrom(buf); err != nil || string(buf[:n]) != "initial" {
		t.Fatalf("read %q, %v from the taken socket; want the peer's datagram", buf[:n], err)
	}
	// The descriptor the protocol handed over is released: the core
	// serves on its own duplicate.
	if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(first), syscall.F_GETFD, 0); errno == 0 {
		t.Errorf("descriptor %d still open after the socket was taken", first)
	}

	for name, vars := range map[string]map[string]string{
		"none":          {},
		"another's pid": {"LISTEN_PID": strconv.Itoa(pid + 1), "LISTEN_FDS": "1"},
	} {
		pc, err := activationSocketFrom(env(vars), pid, first)
		if pc != nil || err != nil {
			t.Errorf("%s: got socket %v, error %v; want neither (bind listen)", name, pc, err)
		}
	}
}

// TestActivationSocketNamed: of several sockets, the one named quic.
func TestActivationSocketNamed(t *testing.T) {
	a, b := testutil.UDPSocket(t), testutil.UDPSocket(t)
	first := passed(t, testutil.UDPSocketFile(t, a), testutil.UDPSocketFile(t, b))
	pid := os.Getpid()
	pc, err := activationSocketFrom(env(map[string]string{"LISTEN_PID": strconv.Itoa(pid), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "metrics:quic"}), pid, first)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if pc.LocalAddr().String() != b.LocalAddr().String() {
		t.Fatalf("socket on %s, want the one named quic, on %s", pc.LocalAddr(), b.LocalAddr())
	}
}

// TestActivationSocketRefused: what a unit gets wrong is named, with what
// to change in it.
func TestActivationSocketRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	u1, u2 := testutil.UDPSocket(t), testutil.UDPSocket(t)
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name  string
		vars  map[string]string
		files []*os.File
		want  string
	}{
		{"stream socket", map[string]string{"LISTEN_PID": pid, "LISTEN_FDS": "1"}, []*os.File{lf}, "ListenDatagram="},
		{"no count", map[string]string{"LISTEN_PID": pid}, nil, "LISTEN_FDS"},
		{"two unnamed", map[string]string{"LISTEN_PID": pid, "LISTEN_FDS": "2"},
			[]*os.File{testutil.UDPSocketFile(t, u1), testutil.UDPSocketFile(t, u2)}, "FileDescriptorName=quic"},
	} {
		first := passed(t, tc.files...)
		pc, err := activationSocketFrom(env(tc.vars), os.Getpid(), first)
		if err == nil {
			pc.Close()
			t.Errorf("%s: taken; want an error", tc.name)
			continue
		}
		t.Logf("%s: %v", tc.name, err)
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.want)
		}
	}
}
