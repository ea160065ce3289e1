package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linkmon"
	"github.com/edge-sync/edge-sync/outbox"
	"github.com/edge-sync/edge-sync/wire"
)

// TestSendPackAnswers sends a pack of small ops from a real outbox to a
// raw QUIC peer on loopback that reads the stream and answers as each
// case says, not always as the protocol wants: the ops go whole, in
// lease order, on one stream; each answer settles its own op; the ops
// after a broken stream, an ERROR or an answer for another op are in
// doubt (docs/wire.md, "Several ops per stream").
func TestSendPackAnswers(t *testing.T) {
	ack := func(id edgesync.OpID) wire.Frame { return &wire.Ack{IDs: []edgesync.OpID{id}} }
	cases := []struct {
		name   string
		answer func(ids []edgesync.OpID) []wire.Frame
		// broken: the peer resets its side after the answers. A reset
		// may discard answers not yet read, so acked is then a bound.
		broken bool
		// acked and nacked are the ops settled so; the rest are in doubt,
		// with an error that errors.Is wantErr (nil: no doubt).
		acked, nacked int
		wantErr       error
	}{
		{"every op acked", func(ids []edgesync.OpID) []wire.Frame {
			var fs []wire.Frame
			for _, id := range ids {
				fs = append(fs, ack(id))
			}
			return fs
		}, false, 5, 0, nil},
		{"one op refused, the others acked", func(ids []edgesync.OpID) []wire.Frame {
			return []wire.Frame{ack(ids[0]), ack(ids[1]), &wire.Nack{ID: ids[2], Code: wire.CodeQuota, Msg: "quota"}, ack(ids[3]), ack(ids[4])}
		}, false, 4, 1, nil},
		{"stream broken after two answers", func(ids []edgesync.OpID) []wire.Frame {
			return []wire.Frame{ack(ids[0]), ack(ids[1])}
		}, true, 2, 0, nil},
		{"stream ended after two answers", func(ids []edgesync.OpID) []wire.Frame {
			return []wire.Frame{ack(ids[0]), ack(ids[1])}
		}, false, 2, 0, io.ErrUnexpectedEOF},
		{"ERROR after one answer", func(ids []edgesync.OpID) []wire.Frame {
			return []wire.Frame{ack(ids[0]), &wire.Error{Code: wire.CodeShuttingDown, Msg: "closing"}}
		}, false, 1, 0, wire.ErrShuttingDown},
		{"the second answer names another op", func(ids []edgesync.OpID) []wire.Frame {
			return []wire.Frame{ack(ids[0]), ack(ids[3]), ack(ids[1])}
		}, false, 1, 0, wire.ErrBadRequest},
		{"a resume answer in a pack", func(ids []edgesync.OpID) []wire.Frame {
			return []wire.Frame{&wire.ResumeAnswer{ID: ids[0], Complete: true}}
		}, false, 0, 0, wire.ErrBadRequest},
	}
	p := testutil.NewPKI(t, "site-1")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ob.Close()
			sizes := []int{0, 100, 3000, 20 << 10, 512, 80 << 10} // the last is too large for a pack
			var as []*attempt
			for i, n := range sizes {
				if _, err := ob.Enqueue(context.Background(), outbox.NewOp{Endpoint: "core", Key: fmt.Sprintf("k%d", i), Priority: edgesync.Normal,
					Kind: edgesync.EventOp, Payload: bytes.NewReader(testutil.RandomBytes(uint64(i+1), n))}); err != nil {
					t.Fatal(err)
				}
			}
			ops, err := ob.Lease("core", len(sizes), edgesync.Normal)
			if err != nil || len(ops) != len(sizes) {
				t.Fatalf("leased %d ops (%v), want %d", len(ops), err, len(sizes))
			}
			for i := range ops {
				pl, err := ob.OpenPayload(ops[i].ID)
				if err != nil {
					t.Fatal(err)
				}
				as = append(as, &attempt{op: &ops[i], pl: pl, params: linkmon.SyncParameters{Mode: edgesync.SyncFull, ChunkSize: 128 << 10}})
			}
			packed := ops[:5]
			ids := make([]edgesync.OpID, len(packed))
			for i, op := range packed {
				ids[i] = op.ID
			}

			conn, got := rawPackPeer(t, p, tc.answer(ids), tc.broken)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			res, errs, _ := newOpSender().sendPack(ctx, conn, as, nil)

			frames := <-got
			var headers []edgesync.OpID
			for _, f := range frames {
				if h, ok := f.(*wire.OpHeader); ok {
					headers = append(headers, h.ID)
				}
			}
			if fmt.Sprint(headers) != fmt.Sprint(ids) {
				t.Fatalf("the peer read headers of %v, want the five small ops in lease order %v", headers, ids)
			}
			if len(frames) != 3*5-1 { // the empty op has no DATA
				t.Errorf("the peer read %d frames, want 14 (header, data, commit per op; no data for the empty op)", len(frames))
			}
			if !errors.Is(errs[5], errUnpackable) || res[5].acked {
				t.Errorf("the 80 KiB op: %+v, %v; want it left out of the pack (errUnpackable)", res[5], errs[5])
			}
			var acked, nacked int
			for i := range packed {
				switch {
				case res[i].acked && errs[i] == nil:
					acked++
				case res[i].nack != nil && errs[i] == nil:
					nacked++
					if res[i].nack.ID != ids[i] {
						t.Errorf("op %d settled by the nack of %s", i, res[i].nack.ID)
					}
				case errs[i] == nil:
					t.Errorf("op %d has neither an answer nor an error", i)
				case tc.wantErr != nil && !errors.Is(errs[i], tc.wantErr):
					t.Errorf("op %d in doubt with %v, want %v", i, errs[i], tc.wantErr)
				}
				if i < acked+nacked && errs[i] != nil {
					t.Errorf("op %d in doubt before an answered one", i)
				}
			}
			if tc.broken && acked <= tc.acked && nacked == 0 {
				t.Logf("%d of %d answers read before the reset", acked, tc.acked)
			} else if acked != tc.acked || nacked != tc.nacked {
				t.Fatalf("%d acked, %d refused; want %d and %d (errors %v)", acked, nacked, tc.acked, tc.nacked, errs)
			}
			if res[0].wireBytes != 0 || res[2].wireBytes == 0 || res[2].plainBytes != 3000 {
				t.Errorf("per-op bytes: empty op %d, 3000 B op %d plain %d encoded; want 0, 3000 and >0", res[0].wireBytes, res[2].plainBytes, res[2].wireBytes)
			}
		})
	}
}

// rawPackPeer accepts one connection and one stream on loopback, reads
// every frame until the stream's end, writes answers and ends (or, if
// broken, resets) its side. It returns the agent's end of the connection
// and a channel that yields the frames read once the peer is done.
func rawPackPeer(t *testing.T, p *testutil.PKI, answers []wire.Frame, broken bool) (*quic.Conn, <-chan []wire.Frame) {
	t.Helper()
	ln, err := quic.ListenAddr("127.0.0.1:0", p.ServerTLS(t), wire.QUICConfig(4))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	got := make(chan []wire.Frame, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var frames []wire.Frame
		sent := false
		defer func() {
			if !sent {
				got <- frames
			}
		}()
		conn, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		for range 4 * wire.MaxOpsPerStream {
			f, err := wire.ReadFrame(str, wire.MaxFrameSize)
			if err != nil {
				break // io.EOF: the agent closed its side
			}
			frames = append(frames, f)
		}
		got <- frames
		sent = true
		for _, f := range answers {
			if err := wire.WriteFrame(str, f); err != nil {
				return
			}
		}
		if broken {
			str.CancelWrite(0)
		} else {
			str.Close()
		}
		<-ctx.Done() // the test closes the connection
	}()
	conn, err := quic.DialAddr(ctx, ln.Addr().String(), p.ClientTLS(t, "127.0.0.1"), wire.QUICConfig(4))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.CloseWithError(0, "")
		cancel()
		<-done
		ln.Close()
	})
	return conn, got
}
