//go:build !linux

package linksim

import (
	"net"
	"time"
)

func enableRxTime(*net.UDPConn) {}

func rxTime(_ []byte, now time.Time) time.Time { return now }
