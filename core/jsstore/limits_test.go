package jsstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
)

// TestStreamLimitLosesNothing: an operator gives the events stream, or
// the data stream that holds large ops' chunks, a max_bytes (`nats stream
// edit --max-bytes`), and more events arrive than it holds. Every op the
// store acknowledged must still be there, byte for byte; the ops it has
// no room for are refused with core.ErrStoreFull (the agent keeps them);
// and once the operator raises the limit, every op sent again is stored
// exactly once: the acknowledged ones come back as duplicates. On one
// replica (an applied entry, then the event) and with batches (the event
// and its marker as one atomic batch).
func TestStreamLimitLosesNothing(t *testing.T) {
	srv := natstest.Run(t)
	for _, batches := range []bool{false, true} {
		mode := "two-writes"
		if batches {
			mode = "batches"
		}
		t.Run(mode+"/events", func(t *testing.T) {
			testStreamLimit(t, srv.URL(), batches, streamEvents, 4<<10)
		})
		t.Run(mode+"/data", func(t *testing.T) {
			testStreamLimit(t, srv.URL(), batches, streamData, 24<<10)
		})
	}
}

// testStreamLimit fills the stream `what` of a store on url with events
// of size bytes each under a max_bytes of 16 of them.
func testStreamLimit(t *testing.T, url string, batches bool, what string, size int) {
	const agent, ops = "ship-7", 40
	s := openWith(t, Config{Config: core.Config{InlineMax: 8 << 10, ChunkSize: 8 << 10}, URLs: []string{url},
		Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1, forceBatches: batches})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, js := natstest.Connect(t, url)
	name := s.n.stream(what)
	limit := int64(16 * size)
	setMaxBytes(ctx, t, js, name, limit)

	all := make([]sent, ops)
	acked, refused := 0, 0
	for i := range all {
		data := storetest.Payload(uint64(i+1), size)
		all[i] = sent{n: i + 1, hdr: storetest.Header(storetest.OpID(uint64(i+1)), edgesync.EventOp, "log", data), data: data}
		_, err := s.Apply(agent, all[i].hdr, bytes.NewReader(data))
		switch {
		case err == nil:
			all[i].acked = true
			acked++
		case errors.Is(err, core.ErrStoreFull):
			refused++
			if refused == 1 {
				t.Logf("first refusal, op %d: %v", i+1, err)
			}
		default:
			t.Fatalf("op %d into a stream at its max_bytes: %v; want it stored or refused with core.ErrStoreFull", i+1, err)
		}
	}
	t.Logf("%d ops of %d bytes into %s with max_bytes %d: %d acknowledged, %d refused", ops, size, name, limit, acked, refused)

	var held []sent
	for _, op := range all {
		if op.acked {
			held = append(held, op)
		}
	}
	checkEventsOnce(t, s, agent, held, fmt.Sprintf("acknowledged under %s's max_bytes %d", name, limit))
	if refused == 0 {
		t.Errorf("%d ops of %d bytes under a max_bytes of %d: none refused", ops, size, limit)
	}

	// The operator raises the limit; the agent sends every op again.
	setMaxBytes(ctx, t, js, name, -1)
	var again []int
	for i, op := range all {
		res, err := s.Apply(agent, op.hdr, bytes.NewReader(op.data))
		if err != nil {
			t.Fatalf("op %d sent again once the limit is raised: %v", i+1, err)
		}
		if op.acked && !res.Duplicate {
			again = append(again, i+1)
		}
	}
	if len(again) > 0 {
		t.Errorf("ops %v, acknowledged before, were stored again when sent again: their applied markers or entries are gone", again)
	}
	checkEventsOnce(t, s, agent, all, "sent again once the limit was raised")
}

// checkEventsOnce fails t unless each of ops is one of agent's events in
// s, byte for byte; what says which ops they are.
func checkEventsOnce(t *testing.T, s *Store, agent string, ops []sent, what string) {
	t.Helper()
	evs, count := storetest.EventsByOp(t, s, agent)
	seq := map[edgesync.OpID]uint64{}
	for _, e := range evs {
		seq[e.OpID] = e.Seq
	}
	var notOnce []string
	var bad []int
	var firstErr error
	for _, op := range ops {
		if n := count[op.hdr.OpID]; n != 1 {
			notOnce = append(notOnce, fmt.Sprintf("%d (%d times)", op.n, n))
			continue
		}
		_, o, err := s.EventData(agent, seq[op.hdr.OpID])
		var got bytes.Buffer
		if err == nil {
			_, err = got.ReadFrom(o)
		}
		if err != nil || !bytes.Equal(got.Bytes(), op.data) {
			bad = append(bad, op.n)
			if firstErr == nil {
				firstErr = fmt.Errorf("%d of %d bytes read: %v", got.Len(), len(op.data), err)
			}
		}
	}
	if len(notOnce) > 0 {
		t.Errorf("%d of %d ops %s are not stored exactly once: %v", len(notOnce), len(ops), what, notOnce)
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d events of ops %s are not read back as sent: %v; the first: %v", len(bad), len(ops), what, bad, firstErr)
	}
}

// sent is an op a test sent to a store, and whether it was acknowledged.
type sent struct {
	n     int // from 1, in the order sent
	hdr   core.PartialHeader
	data  []byte
	acked bool
}

// setMaxBytes sets stream name's max_bytes as an operator would with
// `nats stream edit name --max-bytes`: every other field as it is.
func setMaxBytes(ctx context.Context, t *testing.T, js jetstream.JetStream, name string, limit int64) {
	t.Helper()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxBytes = limit
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("stream %s: max_bytes %d: %v", name, limit, err)
	}
}
