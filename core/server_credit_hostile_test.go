package core

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/wire"
)

// TestStreamCreditsAfterBrokenStreams has a client that does not follow
// the protocol open 4 x MaxStreams streams on one connection, one after
// the other without waiting for answers: streams reset after their
// header, after half a DATA frame, streams finished with nothing in them,
// and streams left open after a header the core waits on. The core holds
// finished streams' credit in batches (server_credit.go); if a broken
// stream's credit were never given back, the client could open no more
// than MaxStreams. Afterwards an op sent whole is still acknowledged.
func TestStreamCreditsAfterBrokenStreams(t *testing.T) {
	const maxStreams = 32
	ts := startServer(t, Config{}, func(c *ServerConfig) { c.MaxStreams = maxStreams; c.FrameTimeout = time.Second })
	c := ts.dial(t, 0)
	for i := range 4 * maxStreams {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		str, err := c.Open(ctx)
		cancel()
		if err != nil {
			t.Fatalf("stream %d did not open within 20 s (%v): the credit of broken streams is not given back", i, err)
		}
		id := hostile.OpID(1, i)
		switch i % 4 {
		case 0: // reset after the header
			if err := hostile.Write(str, hostile.OpHeader(id, "k", 200<<10, 64<<10)); err != nil {
				t.Fatal(err)
			}
			str.CancelWrite(0)
			str.CancelRead(0)
		case 1: // reset in the middle of a DATA frame
			payload := bytes.Repeat([]byte{byte(i)}, 1000)
			hdr := hostile.OpHeader(id, "k", uint64(len(payload)), 64<<10)
			hdr.PayloadHash = sha256.Sum256(payload)
			var b []byte
			for _, f := range []wire.Frame{hdr, fullChunk(t, id, payload)} {
				if b, err = f.Append(b); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := str.Write(b[:len(b)-300]); err != nil {
				t.Fatal(err)
			}
			str.CancelWrite(0)
		case 2: // nothing, then FIN
			if err := str.Close(); err != nil {
				t.Fatal(err)
			}
		default: // a header, then silence until the core gives up
			if err := hostile.Write(str, hostile.OpHeader(id, "k", 200<<10, 64<<10)); err != nil {
				t.Fatal(err)
			}
		}
	}
	str := openStream(t, c)
	defer str.CancelRead(0)
	id := hostile.OpID(2, 0)
	payload := []byte(fmt.Sprintf("after %d broken streams", 4*maxStreams))
	hdr := hostile.OpHeader(id, "ev", uint64(len(payload)), 64<<10)
	hdr.PayloadHash = sha256.Sum256(payload)
	if err := hostile.Write(str, hdr, fullChunk(t, id, payload), &wire.Commit{ID: id, Chunks: 1}); err != nil {
		t.Fatal(err)
	}
	if err := str.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := hostile.Read(str, 20*time.Second)
	if err != nil || f.Type() != wire.FrameAck {
		t.Fatalf("op after the broken streams: %v, %v; want ACK", f, err)
	}
}
