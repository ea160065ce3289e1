package linksim

import (
	"encoding/binary"
	"net"
	"syscall"
	"time"
)

// enableRxTime asks the kernel to stamp each datagram's arrival, so a
// reader that was descheduled still knows when packets reached the link.
// It is best effort: where the socket refuses, rxTime finds no stamp and
// takes the time of the read, as it does on other systems.
func enableRxTime(c *net.UDPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	})
}

// maxRxAge bounds how far back a kernel timestamp may move an arrival.
const maxRxAge = time.Second

// rxTime returns the arrival time carried in oob, as a monotonic time.Time
// (now minus the packet's age), or now when oob has no timestamp.
func rxTime(oob []byte, now time.Time) time.Time {
	// struct cmsghdr { size_t len; int level; int type; } then data, aligned.
	const hdr = 16
	for len(oob) >= hdr {
		l := int(binary.NativeEndian.Uint64(oob[0:8]))
		level := int32(binary.NativeEndian.Uint32(oob[8:12]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:16]))
		if l < hdr || l > len(oob) {
			return now
		}
		if level == syscall.SOL_SOCKET && typ == syscall.SO_TIMESTAMPNS && l >= hdr+16 {
			sec := int64(binary.NativeEndian.Uint64(oob[hdr : hdr+8]))
			nsec := int64(binary.NativeEndian.Uint64(oob[hdr+8 : hdr+16]))
			age := time.Duration(now.UnixNano() - (sec*1e9 + nsec))
			if age <= 0 {
				return now
			}
			return now.Add(-min(age, maxRxAge))
		}
		next := (l + 7) &^ 7
		if next > len(oob) {
			return now
		}
		oob = oob[next:]
	}
	return now
}
