package hostile

import (
	"context"
	"errors"
	"fmt"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
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
	return openEach(ctx, c, n, "data-first", func(i int, str *quic.Stream) error {
		return writeData(str, OpID(conn, i), sent)
	})
}

// PartialData opens n streams on c that each send a valid header of a
// 1 GiB op in chunks of wire.MaxChunkSize, then a DATA frame declaring the
// largest body a core accepts, of which they send sent bytes.
func PartialData(ctx context.Context, c *Client, conn, n, sent int) (*Attack, error) {
	return openEach(ctx, c, n, "partial-data", func(i int, str *quic.Stream) error {
		id := OpID(conn, i)
		if err := Write(str, OpHeader(id, fmt.Sprintf("hostile/%d/%d", conn, i), 1<<30, wire.MaxChunkSize)); !writeOK(err) {
			return err
		}
		return writeData(str, id, sent)
	})
}

// openEach opens n streams on c, each kept in the attack, and has send
// write stream i's frames; what names the attack in errors.
func openEach(ctx context.Context, c *Client, n int, what string, send func(i int, str *quic.Stream) error) (*Attack, error) {
	a := &Attack{}
	for i := range n {
		str, err := c.Open(ctx)
		if err != nil {
			return a, fmt.Errorf("%s stream %d: %w", what, i, err)
		}
		a.Streams = append(a.Streams, str)
		if err := send(i, str); err != nil {
			return a, fmt.Errorf("%s stream %d: %w", what, i, err)
		}
	}
	return a, nil
}

// writeData writes the head of a DATA frame of op id that declares the
// largest body a core accepts, and sent bytes of that body; a stream the
// core stopped is no error (writeOK).
func writeData(str *quic.Stream, id edgesync.OpID, sent int) error {
	if _, err := str.Write(append(DataHead(id, MaxDataBody), make([]byte, sent)...)); !writeOK(err) {
		return err
	}
	return nil
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

// EarlyAnswers sends, one stream after another, n headers of ops larger
// than the core accepts (Welcome.MaxOpBytes) and reads each NACK, keeping
// its side of every stream open, as an agent waiting for an answer does.
// A core that does not end such streams runs out of them.
func EarlyAnswers(ctx context.Context, c *Client, conn, n int) error {
	for i := range n {
		str, err := c.Open(ctx)
		if err != nil {
			return fmt.Errorf("early-answer stream %d: %w", i, err)
		}
		if err := Write(str, OpHeader(OpID(conn, i), "too-large", c.Welcome.MaxOpBytes+1, wire.MaxChunkSize)); !writeOK(err) {
			return fmt.Errorf("early-answer stream %d: %w", i, err)
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = str.SetReadDeadline(dl)
		}
		f, err := wire.ReadFrame(str, 0)
		if err != nil {
			return fmt.Errorf("early-answer stream %d: %w", i, err)
		}
		if f.Type() != wire.FrameNack {
			return fmt.Errorf("early-answer stream %d: answered %s, want NACK", i, f.Type())
		}
	}
	return nil
}

// Resets opens n streams that each send a valid header of a two-chunk op
// and part of its first DATA frame, then reset the stream.
func Resets(ctx context.Context, c *Client, conn, n int) error {
	for i := range n {
		str, err := c.Open(ctx)
		if err != nil {
			return fmt.Errorf("reset stream %d: %w", i, err)
		}
		id := OpID(conn, i)
		if err := Write(str, OpHeader(id, "reset", 128<<10, 64<<10)); !writeOK(err) {
			return fmt.Errorf("reset stream %d: %w", i, err)
		}
		if _, err := str.Write(append(DataHead(id, 64<<10+18), make([]byte, 1000)...)); !writeOK(err) {
			return fmt.Errorf("reset stream %d: %w", i, err)
		}
		str.CancelWrite(0x42)
		str.CancelRead(0x42)
	}
	return nil
}
