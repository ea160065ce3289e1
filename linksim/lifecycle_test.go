package linksim

import (
	"net"
	"testing"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestLifecycle: a relay and a conn close twice without error and take
// nothing after Close: the relay's address is free again, the conn's
// writes fail (docs/architecture.md#lifecycle).
func TestLifecycle(t *testing.T) {
	target, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	r, err := NewRelay(RelayConfig{Target: target.LocalAddr().String(), Profile: Unshaped()})
	if err != nil {
		t.Fatal(err)
	}
	testutil.CheckClose(t, r.Close, func() error {
		ln, err := net.ListenUDP("udp", r.Addr().(*net.UDPAddr))
		if err != nil {
			return err
		}
		ln.Close()
		return net.ErrClosed // the address is free: the relay no longer listens
	}, net.ErrClosed)

	c, err := Wrap(target, Unshaped())
	if err != nil {
		t.Fatal(err)
	}
	testutil.CheckClose(t, c.Close, func() error {
		_, err := c.WriteTo([]byte("after close"), r.Addr())
		return err
	}, net.ErrClosed)
}
