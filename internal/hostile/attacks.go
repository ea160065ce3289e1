package hostile

import (
	"context"
	"errors"
	"fmt"

	"github.com/quic-go/quic-go"

	"github.com/edge-sync/edge-sync/wire"
)

// Attack is what an attack opened: the streams it holds, which stay open
// (and hold whatever the core keeps for them) until the caller closes the
// client.
type Attack struct {
	Streams []*quic.Stream
}

// DataFirst opens n streams on c that each begin with a DATA frame
// declaring the largest body a core accepts and then send sent bytes of
// it: a frame no op stream may begin with.
func DataFirst(ctx context.Context, c *Client, conn, n, sent int) (*Attack, error) {
	a := &Attack{}
	for i := range n {
		str, err := c.Open(ctx)
		if err != nil {
			return a, fmt.Errorf("data-first stream %d: %w", i, err)
		}
		a.Streams = append(a.Streams, str)
		if _, err := str.Write(append(DataHead(OpID(conn, i), MaxDataBody), make([]byte, sent)...)); !writeOK(err) {
			return a, fmt.Errorf("data-first stream %d: %w", i, err)
		}
	}
	return a, nil
}

// PartialData opens n streams on c that each send a valid header of a
// 1 GiB op in chunks of wire.MaxChunkSize, then a DATA frame declaring the
// largest body a core accepts, of which they send sent bytes.
func PartialData(ctx context.Context, c *Client, conn, n, sent int) (*Attack, error) {
	a := &Attack{}
	for i := range n {
		str, err := c.Open(ctx)
		if err != nil {
			return a, fmt.Errorf("partial-data stream %d: %w", i, err)
		}
		a.Streams = append(a.Streams, str)
		id := OpID(conn, i)
		if err := Write(str, OpHeader(id, fmt.Sprintf("hostile/%d/%d", conn, i), 1<<30, wire.MaxChunkSize)); !writeOK(err) {
			return a, fmt.Errorf("partial-data stream %d: %w", i, err)
		}
		if _, err := str.Write(append(DataHead(id, MaxDataBody), make([]byte, sent)...)); !writeOK(err) {
			return a, fmt.Errorf("partial-data stream %d: %w", i, err)
		}
	}
	return a, nil
}

// HeadersOnly opens n streams on c that each send a valid header of a
// 1 GiB op and the head of a maximal DATA frame, and no body.
func HeadersOnly(ctx context.Context, c *Client, conn, n int) (*Attack, error) {
	return PartialData(ctx, c, conn, n, 0)
}

// writeOK reports whether a write went through or the core stopped the
// stream (it answered and read no more): both are fine for an attack.
func writeOK(err error) bool {
	if err == nil {
		return true
	}
	var se *quic.StreamError
	return errors.As(err, &se) && se.Remote
}
