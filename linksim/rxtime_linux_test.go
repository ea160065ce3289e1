package linksim

import (
	"net"
	"testing"
	"time"
)

// TestRxTime checks that the relay's readers get the kernel's arrival
// time: a datagram that waited in the socket buffer is dated when it came.
func TestRxTime(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	enableRxTime(c)
	tx := dial(t, c.LocalAddr().String())
	sent := time.Now()
	if _, err := tx.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the datagram must wait in the buffer: that is the point
	buf, oob := make([]byte, 16), make([]byte, 128)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, oobn, _, _, err := c.ReadMsgUDPAddrPort(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	at := rxTime(oob[:oobn], now)
	if at.Sub(sent) > 20*time.Millisecond || at.Before(sent.Add(-time.Millisecond)) {
		t.Errorf("arrival dated %v after send (read %v after), want the kernel's time, close to the send",
			at.Sub(sent), now.Sub(sent))
	}
	if got := rxTime(nil, now); !got.Equal(now) {
		t.Errorf("rxTime without a timestamp = %v, want now", got)
	}
	if got := rxTime([]byte{1, 2, 3}, now); !got.Equal(now) {
		t.Errorf("rxTime of a truncated control message = %v, want now", got)
	}
}
