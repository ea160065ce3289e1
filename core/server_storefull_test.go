package core

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/wire"
)

// TestStoreFullAnswersStoreFull: a store whose file reached its size cap
// (bbolt's MaxSize, as a full disk; agent.TestCoreStoreFull has a real
// full tmpfs) refuses each op it has no room for with NACK store-full,
// raw frames from a client that keeps sending; the core logs one ERROR
// for all of them, naming the file, its free space and what to do, and
// counts them; the ops it took before are unchanged.
func TestStoreFullAnswersStoreFull(t *testing.T) {
	ts := startServer(t, Config{maxFileSize: 1 << 20}, nil)
	c := ts.dial(t, 0)
	send := func(i int) wire.Frame {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		id := hostile.OpID(0, i)
		data := payload(uint64(i), 40<<10)
		hash := sha256.Sum256(data)
		ch, err := codec.NewHeader(codec.ModeFull, codec.LevelDefault, 64<<10, int64(len(data)), codec.Hash(hash), nil)
		if err != nil {
			t.Fatal(err)
		}
		chunks, err := hostile.DataFrames(&ch, id, data, 0)
		if err != nil {
			t.Fatal(err)
		}
		str, err := c.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer str.CancelRead(0)
		err = hostile.Write(str, &wire.OpHeader{ID: id, Key: fmt.Sprint("k", i), Priority: edgesync.Normal, Kind: edgesync.EventOp,
			Mode: uint8(codec.ModeFull), PlainSize: uint64(len(data)), ChunkSize: uint32(ch.ChunkSize), PayloadHash: hash},
			chunks[0], &wire.Commit{ID: id, Chunks: 1})
		if err != nil {
			t.Fatal(err)
		}
		f, err := hostile.Read(str, 10*time.Second)
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
		return f
	}
	stored, refused := 0, 0
	for i := 0; i < 200 && refused < 20; i++ {
		switch f := send(i).(type) {
		case *wire.Ack:
			if refused > 0 {
				continue // bbolt found a free page for it: the store was at its brink
			}
			stored++
		case *wire.Nack:
			if f.Code != wire.CodeStoreFull {
				t.Fatalf("op %d refused %s (%s), want store-full", i, f.Code, f.Msg)
			}
			refused++
		default:
			t.Fatalf("op %d answered %s", i, f.Type())
		}
	}
	if stored == 0 || refused < 20 {
		t.Fatalf("%d ops stored, %d refused store-full on a store capped at 1 MiB: want some of each", stored, refused)
	}
	st := ts.srv.Stats()
	if !st.StoreFull || st.StoreFullRefusals < int64(refused) {
		t.Fatalf("stats %+v after %d refusals: want the store full and each counted", st, refused)
	}
	errs := 0
	for line := range strings.Lines(ts.logs.String()) {
		if strings.Contains(line, "[ERROR]") {
			errs++
			if !strings.Contains(line, ts.store.Path()) || !strings.Contains(line, "free=") || !strings.Contains(line, "When the store is full") {
				t.Errorf("the ERROR does not name the store's file, its free space and what to do: %s", line)
			}
		}
	}
	if errs != 1 {
		t.Fatalf("%d ERRORs for %d refusals, want 1:\n%s", errs, refused, ts.logs.String())
	}
	for i := range stored {
		_, o, err := ts.store.EventData("site-1", uint64(i+1))
		if err != nil {
			t.Fatalf("event %d stored before the store filled: %v", i+1, err)
		}
		got := make([]byte, o.Size())
		if _, err := o.ReadAt(got, 0); err != nil || string(got) != string(payload(uint64(i), 40<<10)) {
			t.Fatalf("event %d differs from op %d after the refusals (%v)", i+1, i, err)
		}
	}
}

// TestStoreFullPacked: on the path of several ops per stream (one group
// commit for a stream's ops, docs/wire.md "Several ops per stream") a
// store at its size cap refuses each op it has no room for store-full,
// never internal, acknowledges only what it stored, and counts each
// refusal.
func TestStoreFullPacked(t *testing.T) {
	ts := startServer(t, Config{maxFileSize: 1 << 20}, nil)
	c := ts.dial(t, wire.CapOpsPerStream)
	var acked, nacked []edgesync.OpID
	refused := 0
	for s := 0; s < 40 && refused < 16; s++ {
		ids, b := packedOps(t, 0, s*8, 8, 40<<10)
		answers := sendStream(t, c, b)
		if len(answers) != len(ids) {
			t.Fatalf("stream %d: answers %s, want one per op", s, describe(answers))
		}
		for i, f := range answers {
			switch f := f.(type) {
			case *wire.Ack:
				acked = append(acked, ids[i])
			case *wire.Nack:
				if f.Code != wire.CodeStoreFull {
					t.Fatalf("stream %d op %d refused %s (%s), want store-full", s, i, f.Code, f.Msg)
				}
				refused++
				nacked = append(nacked, ids[i])
			default:
				t.Fatalf("stream %d op %d answered %s", s, i, f.Type())
			}
		}
	}
	if len(acked) == 0 || refused < 16 {
		t.Fatalf("%d ops stored, %d refused store-full on a store capped at 1 MiB: want some of each", len(acked), refused)
	}
	st := ts.srv.Stats()
	if !st.StoreFull || st.StoreFullRefusals < int64(refused) || st.InternalErrors != 0 {
		t.Fatalf("stats %+v after %d refusals: want the store full, each refusal counted, no internal error", st, refused)
	}
	storedOnce(t, ts.store, "site-1", acked, nacked)
}
