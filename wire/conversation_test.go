package wire

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/quic-go/quic-go"
)

// TestConversationOverRealQUIC runs the documented conversation over a real
// QUIC connection on loopback: Hello/Welcome on a control stream, one op
// per stream (OpHeader, Data..., Commit, answered by Ack or Nack), and
// Ping/Pong as datagrams.
func TestConversationOverRealQUIC(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lp := newLoopbackPair(ctx, t, &quic.Config{EnableDatagrams: true})

	coreDone := make(chan error, 1)
	go func() { coreDone <- runTestCore(ctx, lp.core) }()

	// Control stream.
	ctl, err := lp.agent.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(ctl, &Hello{Versions: []uint32{ProtocolVersion, 99}, Agent: "ship-7", Caps: CapResume | CapDatagrams}); err != nil {
		t.Fatal(err)
	}
	f, err := ReadFrame(ctl, 0)
	if err != nil {
		t.Fatalf("read welcome: %v", err)
	}
	w, ok := f.(*Welcome)
	if !ok || w.Version != ProtocolVersion {
		t.Fatalf("got %#v, want a Welcome choosing version %d", f, ProtocolVersion)
	}

	// Two ops: one whose hash matches, one whose Commit lies.
	payload := make([]byte, 300<<10)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	for _, lie := range []bool{false, true} {
		id := edgesync.OpID{1, 1}
		if lie {
			id[1] = 2
		}
		s, err := lp.agent.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const chunk = 64 << 10
		frames := []Frame{&OpHeader{ID: id, Key: "k", Priority: edgesync.Normal, Kind: edgesync.StateOp,
			PlainSize: uint64(len(payload)), ChunkSize: chunk, PayloadHash: sha256.Sum256(payload)}}
		var n uint64
		for off := 0; off < len(payload); off += chunk {
			frames = append(frames, &Data{ID: id, Offset: uint64(off), Chunk: payload[off:min(off+chunk, len(payload))]})
			n++
		}
		sum := sha256.Sum256(payload)
		if lie {
			sum[0] ^= 1
		}
		frames = append(frames, &Commit{ID: id, Chunks: n, Bytes: uint64(len(payload)), Hash: sum})
		for _, f := range frames {
			if err := WriteFrame(s, f); err != nil {
				t.Fatalf("write %s: %v", f.Type(), err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		ans, err := ReadFrame(s, int(w.MaxFrame))
		if err != nil {
			t.Fatalf("read answer: %v", err)
		}
		switch a := ans.(type) {
		case *Ack:
			if lie || !reflect.DeepEqual(a.IDs, []edgesync.OpID{id}) {
				t.Fatalf("lie=%v: got Ack %v", lie, a.IDs)
			}
		case *Nack:
			if !lie || a.ID != id || !errors.Is(a.Err(), ErrHashMismatch) {
				t.Fatalf("lie=%v: got Nack %v for %v", lie, a.Err(), a.ID)
			}
		default:
			t.Fatalf("answer is a %s", ans.Type())
		}
	}

	// Ping as a datagram; the core answers Pong. Datagrams may be lost,
	// so resend on a ticker within the deadline.
	ping, _ := (&Ping{Seq: 1, Sent: time.Second}).Append(nil)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	pongs := make(chan Frame, 1)
	go func() {
		b, err := lp.agent.ReceiveDatagram(ctx)
		if err != nil {
			close(pongs)
			return
		}
		f, _, _ := Parse(b)
		pongs <- f
	}()
	for got := false; !got; {
		if err := lp.agent.SendDatagram(ping); err != nil {
			t.Fatal(err)
		}
		select {
		case f, ok := <-pongs:
			p, isPong := f.(*Pong)
			if !ok || !isPong || p.Seq != 1 || p.Echo != time.Second {
				t.Fatalf("got %#v, want Pong echoing the ping", f)
			}
			got = true
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("no pong within the deadline")
		}
	}
	lp.agent.CloseWithError(0, "done")
	if err := <-coreDone; err != nil {
		t.Fatalf("core: %v", err)
	}
}

// runTestCore is the smallest core that follows the conversation: it
// answers Hello, verifies each op stream's Commit against the bytes it
// read, and answers datagram Pings. It returns when the agent closes.
func runTestCore(ctx context.Context, conn *quic.Conn) error {
	ctl, err := conn.AcceptStream(ctx)
	if err != nil {
		return err
	}
	f, err := ReadFrame(ctl, 0)
	if err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	h, ok := f.(*Hello)
	if !ok {
		return fmt.Errorf("first frame is %s", f.Type())
	}
	v, err := Negotiate(h.Versions)
	if err != nil {
		return WriteFrame(ctl, ErrorFrameFor(err))
	}
	if err := WriteFrame(ctl, &Welcome{Version: v, Core: "core", MaxFrame: 1 << 20, MaxOpBytes: 1 << 30, QuotaLeft: QuotaUnlimited}); err != nil {
		return err
	}
	go func() { // answers pings until the connection ends
		for {
			b, err := conn.ReceiveDatagram(ctx)
			if err != nil {
				return
			}
			if f, _, err := Parse(b); err == nil {
				if p, ok := f.(*Ping); ok {
					pong, _ := (&Pong{Seq: p.Seq, Echo: p.Sent, Sent: time.Minute}).Append(nil)
					_ = conn.SendDatagram(pong)
				}
			}
		}
	}()
	for {
		s, err := conn.AcceptStream(ctx)
		if err != nil {
			return nil // the agent closed the connection
		}
		if err := serveTestOp(s); err != nil {
			return err
		}
	}
}

func serveTestOp(s *quic.Stream) error {
	var id edgesync.OpID
	hash := sha256.New()
	var bytes uint64
	for {
		f, err := ReadFrame(s, 1<<20)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return WriteFrame(s, ErrorFrameFor(err))
		}
		switch f := f.(type) {
		case *OpHeader:
			id = f.ID
		case *Data:
			if f.ID != id || f.Offset != bytes {
				return WriteFrame(s, NackFor(f.ID, fmt.Errorf("data at %d: %w", f.Offset, ErrBadRequest)))
			}
			hash.Write(f.Chunk)
			bytes += uint64(len(f.Chunk))
		case *Commit:
			var sum [32]byte
			hash.Sum(sum[:0])
			if sum != f.Hash || f.Bytes != bytes {
				err = WriteFrame(s, NackFor(f.ID, fmt.Errorf("verify op: %w", ErrHashMismatch)))
			} else {
				err = WriteFrame(s, &Ack{IDs: []edgesync.OpID{f.ID}})
			}
			if err != nil {
				return err
			}
		}
	}
}
