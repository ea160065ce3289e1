package jsstore

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestGroupWritesAcrossReconnect: the connection of a group drops while
// its writes are in flight and connects again (a real server; nats.go's
// ForceReconnect). Every write then has a result within the store's
// timeout (docs/jetstream.md: a write whose reply the drop lost fails at
// its timeout); a write read as acknowledged is stored, at the sequence
// its acknowledgement names, with its own bytes (no reply is matched to
// another write across the reconnect); nothing is stored twice; and
// nothing is left waiting for a reply. A second group after the
// reconnect is acknowledged whole.
func TestGroupWritesAcrossReconnect(t *testing.T) {
	const timeout = 3 * time.Second
	s, _, str, name := groupWriteStore(t, timeout)
	ctx := context.Background()
	c := s.conns[1]
	group := func(round, n int) []*groupWrite {
		ws := make([]*groupWrite, n)
		for i := range ws {
			body := fmt.Sprintf("round %d write %d %0512d", round, i, i)
			ws[i] = &groupWrite{ctx: ctx, msg: msgID(&nats.Msg{Subject: name + ".w", Data: []byte(body)}, strconv.Itoa(round)+"/"+strconv.Itoa(i))}
		}
		return ws
	}
	ws := group(1, maxGroupWrites)
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		s.enqueueAll(c, ws)
	}()
	// Mid-group: some writes sent and waiting for their replies.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.acks.mu.Lock()
		n := len(c.acks.pend)
		c.acks.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no write of the group in flight within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
	if err := c.nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(timeout + 20*time.Second):
		t.Fatalf("the group has no result %v after its start (the store's timeout is %v)", time.Since(start), timeout)
	}
	took := time.Since(start)
	acked, failed := 0, 0
	for i, w := range ws {
		if w.res.err != nil {
			failed++
			continue
		}
		acked++
		m, err := str.GetMsg(ctx, w.res.ack.Sequence)
		if err != nil {
			t.Fatalf("write %d acknowledged at seq %d, which the stream does not hold: %v", i, w.res.ack.Sequence, err)
		}
		if string(m.Data) != string(w.msg.Data) {
			t.Fatalf("write %d's acknowledgement names seq %d, which holds %.30q, not its bytes %.30q", i, w.res.ack.Sequence, m.Data, w.msg.Data)
		}
	}
	info, err := str.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("across a reconnect: %d writes acknowledged, %d failed, %d stored, in %v", acked, failed, info.State.Msgs, took)
	if int(info.State.Msgs) < acked || int(info.State.Msgs) > len(ws) {
		t.Errorf("%d messages stored for %d writes, %d acknowledged", info.State.Msgs, len(ws), acked)
	}
	c.acks.mu.Lock()
	left := len(c.acks.pend)
	c.acks.mu.Unlock()
	if left != 0 {
		t.Errorf("%d writes still wait for a reply", left)
	}

	ws = group(2, 100)
	s.enqueueAll(c, ws)
	for i, w := range ws {
		if w.res.err != nil {
			t.Fatalf("write %d of the group after the reconnect: %v", i, w.res.err)
		}
	}
}
