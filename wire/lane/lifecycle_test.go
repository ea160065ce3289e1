package lane

import (
	"context"
	"testing"

	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// TestLifecycle: a session and a demux close twice without error; a
// closed session sends nothing, and a closed demux takes no new session
// (docs/architecture.md#lifecycle).
func TestLifecycle(t *testing.T) {
	p := newPair(t, linksim.Unshaped(), nil)
	cs, _ := p.sessions(t, Config{}, Config{})
	testutil.CheckClose(t, cs.Close, func() error {
		return cs.Send(context.Background(), opID(1), 0, []byte("after close"), 0)
	}, ErrClosed)
	testutil.CheckClose(t, p.client.demux.Close, func() error {
		_, err := NewSession(p.client.conn, p.client.tr, p.client.demux, Config{Client: true})
		return err
	}, ErrClosed)
}
