package jsstore

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/edge-sync/edge-sync/internal/natstest"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// TestAtomicBatchSemantics checks, against the real server, what the
// events' layout relies on (docs/jetstream.md, "Exactly once"): a batch of
// an applied marker, published create-only
// (Nats-Expected-Last-Subject-Sequence: 0), and its event becomes visible
// whole or not at all; a batch whose marker exists leaves nothing; of
// concurrent batches for one op exactly one wins; the marker ages out by
// its Nats-TTL while the event stays. On one server and on a 3-node
// cluster with 3 replicas (the server takes different paths for them).
func TestAtomicBatchSemantics(t *testing.T) {
	t.Run("single", func(t *testing.T) { testBatchSemantics(t, []string{natstest.Run(t).URL()}, 1) })
	t.Run("cluster-r3", func(t *testing.T) { testBatchSemantics(t, natstest.RunCluster(t, 3).URLs(), 3) })
}

func testBatchSemantics(t *testing.T, urls []string, replicas int) {
	nc, js := natstest.Connect(t, urls...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var st jetstream.Stream
	testutil.WaitFor(t, 20*time.Second, "the stream to be created (a new cluster's peers come up)", func() bool {
		var err error
		st, err = js.CreateStream(ctx, jetstream.StreamConfig{Name: "SEM", Subjects: []string{"sem.ev.>", "sem.applied.>"},
			Storage: jetstream.FileStorage, Replicas: replicas, AllowAtomicPublish: true, AllowMsgTTL: true})
		return err == nil
	})
	// batch publishes the marker of op and its event as one atomic batch.
	batch := func(op, payload, ttl string) (*jetstream.PubAck, error) {
		id := nuid.Next()
		m1 := nats.NewMsg("sem.applied.a." + op)
		m1.Header.Set("Nats-Batch-Id", id)
		m1.Header.Set("Nats-Batch-Sequence", "1")
		m1.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
		if ttl != "" {
			m1.Header.Set(jetstream.MsgTTLHeader, ttl)
		}
		m2 := nats.NewMsg("sem.ev.a.k")
		m2.Header.Set("Nats-Batch-Id", id)
		m2.Header.Set("Nats-Batch-Sequence", "2")
		m2.Header.Set("Nats-Batch-Commit", "1")
		m2.Header.Set(HdrOp, op)
		m2.Data = []byte(payload)
		if err := nc.PublishMsg(m1); err != nil {
			return nil, err
		}
		f, err := js.PublishMsgAsync(m2)
		if err != nil {
			return nil, err
		}
		select {
		case ack := <-f.Ok():
			return ack, nil
		case err := <-f.Err():
			return nil, err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	msgs := func() uint64 {
		t.Helper()
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	ack, err := batch("op1", "first", "")
	if err != nil {
		t.Fatalf("first batch: %v", err)
	}
	ev, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil || string(ev.Data) != "first" || ev.Subject != "sem.ev.a.k" {
		t.Fatalf("the commit's ack is not the event's sequence: %v %+v", err, ev)
	}
	marker, err := st.GetLastMsgForSubject(ctx, "sem.applied.a.op1")
	if err != nil || marker.Sequence != ack.Sequence-1 {
		t.Fatalf("marker: %v, at %v, want just before the event at %d", err, marker, ack.Sequence)
	}

	// The marker exists: a second batch for the op fails as a whole.
	before := msgs()
	if _, err := batch("op1", "second", ""); !isWrongLastSeq(err) {
		t.Fatalf("second batch of op1: %v, want a wrong-last-sequence error", err)
	}
	if n := msgs(); n != before {
		t.Fatalf("a refused batch left %d messages", n-before)
	}

	// Concurrent batches for one op: exactly one wins; each refusal is a
	// wrong last sequence, and only the winner's event is there.
	const racers = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	var wins []string
	var otherErrs []error
	before = msgs()
	for i := range racers {
		wg.Go(func() {
			p := "racer-" + strconv.Itoa(i)
			_, err := batch("op2", p, "")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins = append(wins, p)
			case !isWrongLastSeq(err):
				otherErrs = append(otherErrs, err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d racers refused with other errors than a wrong last sequence: %v", len(otherErrs), otherErrs)
	if len(wins) != 1 {
		t.Fatalf("%d of %d concurrent batches won (%v); other errors %v", len(wins), racers, wins, otherErrs)
	}
	if n := msgs(); n != before+2 {
		t.Fatalf("concurrent batches left %d messages, want 2 (marker and event); other errors %v", n-before, otherErrs)
	}
	last, err := st.GetLastMsgForSubject(ctx, "sem.ev.a.k")
	if err != nil || string(last.Data) != wins[0] {
		t.Fatalf("event of op2: %v %q, want the winner's %q", err, last.Data, wins[0])
	}

	// A marker with a TTL ages out; the event stays.
	ack, err = batch("op3", "third", "1s")
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, "the marker with a 1s TTL to age out", func() bool {
		_, err := st.GetLastMsgForSubject(ctx, "sem.applied.a.op3")
		return errors.Is(err, jetstream.ErrMsgNotFound)
	})
	if ev, err := st.GetMsg(ctx, ack.Sequence); err != nil || string(ev.Data) != "third" {
		t.Fatalf("event after its marker aged out: %v", err)
	}
}
