package cli

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// Socket activation (docs/core.md, "Running under systemd"): systemd, or
// any supervisor that follows its protocol (sd_listen_fds(3)), binds the
// core's UDP socket itself and hands it to the process as descriptor 3,
// with LISTEN_PID set to the process's PID and LISTEN_FDS to the number
// of descriptors. The socket outlives the core: a core restarted or
// killed keeps its port, and what agents send meanwhile waits in the
// socket's buffer for the next core.

// listenFDsStart is the first descriptor the protocol hands over.
const listenFDsStart = 3

// activationName is the name a unit gives the core's QUIC socket
// (FileDescriptorName=) when it passes the core more than one.
const activationName = "quic"

// activationSocket returns the UDP socket passed to this process by
// socket activation, or nil when none was (LISTEN_PID unset or another
// process's). It takes the variables out of the environment, so that the
// core's children do not take them for theirs.
func activationSocket() (net.PacketConn, error) {
	pc, err := activationSocketFrom(os.Getenv, os.Getpid(), listenFDsStart)
	for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
		os.Unsetenv(v)
	}
	return pc, err
}

// activationSocketFrom is activationSocket reading the variables with
// getenv, for process pid, whose first passed descriptor is first.
func activationSocketFrom(getenv func(string) string, pid int, first int) (net.PacketConn, error) {
	if getenv("LISTEN_PID") != strconv.Itoa(pid) {
		return nil, nil
	}
	n, err := strconv.Atoi(getenv("LISTEN_FDS"))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("socket activation: LISTEN_FDS is %q, want the number of sockets passed (1 or more); check the unit's .socket file", getenv("LISTEN_FDS"))
	}
	fd := first
	if n > 1 {
		names := strings.Split(getenv("LISTEN_FDNAMES"), ":")
		i := -1
		for j, name := range names {
			if name == activationName && j < n {
				i = j
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("socket activation: %d sockets passed and none named %q (LISTEN_FDNAMES=%q); give the core's UDP socket FileDescriptorName=%s in its .socket unit", n, activationName, getenv("LISTEN_FDNAMES"), activationName)
		}
		fd += i
	}
	f := os.NewFile(uintptr(fd), "activated socket")
	// The PacketConn holds its own descriptor, which Go opens
	// close-on-exec: no child of the core inherits the socket.
	defer f.Close()
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("socket activation: descriptor %d is not a datagram socket (%v); the core's .socket unit needs ListenDatagram=, not ListenStream=", fd, err)
	}
	if _, ok := pc.LocalAddr().(*net.UDPAddr); !ok {
		pc.Close()
		return nil, fmt.Errorf("socket activation: descriptor %d is a %s socket, not UDP; the core's .socket unit needs ListenDatagram=HOST:PORT", fd, pc.LocalAddr().Network())
	}
	return pc, nil
}
