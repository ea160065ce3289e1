package lane

import (
	"context"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestAbandonedReported: the receiver's Deliver blocks on a transfer's
// first bytes (as the core's does for lane data ahead of its op's header);
// the sender gives the transfer up; Config.Abandoned is told the op id,
// which is what lets a blocked Deliver give up at once.
func TestAbandonedReported(t *testing.T) {
	p := newPair(t, testLink{rateBps: 20e6, rtt: 20 * time.Millisecond}.profile(), nil)
	release := make(chan struct{})
	abandoned := make(chan [16]byte, 4)
	blocked := make(chan struct{}, 1)
	cs, _ := p.sessions(t, Config{}, Config{
		Deliver: func(id [16]byte, off int64, data []byte) {
			select {
			case blocked <- struct{}{}:
			default:
			}
			<-release
		},
		Abandoned: func(id [16]byte) { abandoned <- id },
	})
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	sent := make(chan error, 1)
	go func() { sent <- cs.Send(ctx, opID(7), 0, randomBytes(t, 200_000), 0) }()
	select {
	case <-blocked:
	case <-time.After(10 * time.Second):
		t.Fatal("no data reached the receiver's Deliver in 10 s")
	}
	cancel()
	if err := <-sent; err == nil {
		t.Fatal("Send returned nil after its context ended with the data undelivered")
	}
	var id [16]byte
	testutil.WaitFor(t, 10*time.Second, "the abandoned transfer reported", func() bool {
		select {
		case id = <-abandoned:
			return true
		default:
			return false
		}
	})
	if id != opID(7) {
		t.Fatalf("abandoned id %x, want %x", id, opID(7))
	}
}
