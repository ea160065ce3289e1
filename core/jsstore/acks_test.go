package jsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edge-sync/edge-sync/internal/natstest"
)

// TestAckReading: the replies of a real server to a stored write, a
// duplicate and a refused one read as nats.go's PublishMsgAsync read
// them (acks.go): each acknowledgement through quickAck, not
// encoding/json, with the stream, sequence and duplicate flag that
// json.Unmarshal finds; the refusal as the *jetstream.APIError the
// store's callers check for.
func TestAckReading(t *testing.T) {
	srv := natstest.Run(t)
	nc, js := natstest.Connect(t, srv.URL())
	name := fmt.Sprintf("ACKS%d", prefixes.Add(1))
	ctx := context.Background()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}}); err != nil {
		t.Fatal(err)
	}
	reply := func(msg *nats.Msg) []byte {
		t.Helper()
		r, err := nc.RequestMsg(msg, 10*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", msg.Subject, err)
		}
		return r.Data
	}
	sub := name + ".a"
	for i, c := range []struct {
		msg       *nats.Msg
		seq       uint64
		duplicate bool
	}{
		{msgID(&nats.Msg{Subject: sub, Data: []byte("x")}, "op-1"), 1, false},
		{msgID(&nats.Msg{Subject: sub, Data: []byte("x")}, "op-1"), 1, true},
		{expectLastSubjSeq(&nats.Msg{Subject: sub, Data: []byte("y")}, 1), 2, false},
	} {
		data := reply(c.msg)
		ack, ok := quickAck(data)
		if !ok {
			t.Fatalf("write %d: the server's acknowledgement %q not read without encoding/json", i, data)
		}
		if ack.Stream != name || ack.Sequence != c.seq || ack.Duplicate != c.duplicate {
			t.Errorf("write %d: %q read as %+v, want stream %s seq %d duplicate %v", i, data, *ack, name, c.seq, c.duplicate)
		}
		if r := pubResult(data); r.err != nil || *r.ack != *ack {
			t.Errorf("write %d: pubResult(%q) = %+v, %v; want %+v", i, data, r.ack, r.err, *ack)
		}
	}
	data := reply(expectLastSubjSeq(&nats.Msg{Subject: sub, Data: []byte("z")}, 0))
	if _, ok := quickAck(data); ok {
		t.Fatalf("the refusal %q read as an acknowledgement", data)
	}
	if r := pubResult(data); !isWrongLastSeq(r.err) {
		t.Fatalf("the refusal %q read as %+v, %v; want a wrong last sequence", data, r.ack, r.err)
	}
	for _, bad := range []string{``, `{`, `{"stream":"S","seq":}`, `{"stream":"S","seq":1,"x":2}`, `{"stream":"","seq":1}`} {
		if _, ok := quickAck([]byte(bad)); ok {
			t.Errorf("quickAck read %q", bad)
		}
		if r := pubResult([]byte(bad)); r.err == nil && r.ack.Stream == "" {
			t.Errorf("pubResult(%q) = %+v without an error", bad, r.ack)
		}
	}
}

// TestGroupWritesUnanswered: in one group with writes JetStream
// acknowledges, a write nobody answers fails after the store's timeout,
// one whose context ends fails then (a write's context is watched once
// the writes before it in the group are answered, as before acks.go),
// and one no stream takes is sent
// again as nats.go's PublishMsgAsync sent it, then fails as it failed
// (jetstream.ErrNoStreamResponse); the others get their
// acknowledgements, and nothing is left waiting for a reply.
func TestGroupWritesUnanswered(t *testing.T) {
	const timeout = 2 * time.Second
	s, nc, _, name := groupWriteStore(t, timeout)
	silent, err := nc.SubscribeSync(name + "-silent") // receives, never answers
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	bg := context.Background()
	ws := []*groupWrite{
		{ctx: bg, msg: &nats.Msg{Subject: name + ".a", Data: []byte("1")}},
		{ctx: short, msg: &nats.Msg{Subject: name + "-silent", Data: []byte("2")}},
		{ctx: bg, msg: &nats.Msg{Subject: name + "-silent", Data: []byte("3")}},
		{ctx: bg, msg: &nats.Msg{Subject: name + "-none", Data: []byte("4")}},
		{ctx: bg, msg: &nats.Msg{Subject: name + ".b", Data: []byte("5")}},
	}
	c := s.conns[1] // not the store's own, which its reads and scans use
	out := c.nc.Stats().OutMsgs
	start := time.Now()
	s.enqueueAll(c, ws)
	took := time.Since(start)
	// Five writes, and the one no stream takes twice more.
	if n := c.nc.Stats().OutMsgs - out; n != 5+noResponderRetries {
		t.Errorf("%d messages sent, want %d", n, 5+noResponderRetries)
	}
	for i, seq := range map[int]uint64{0: 1, 4: 2} {
		if r := ws[i].res; r.err != nil || r.ack.Stream != name || r.ack.Sequence != seq {
			t.Errorf("write %d: %+v, %v; want stream %s seq %d", i, r.ack, r.err, name, seq)
		}
	}
	if err := ws[1].res.err; !errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "within") {
		t.Errorf("the write whose context ended: %v; want its context's end", err)
	}
	if err := ws[2].res.err; !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no acknowledgement within") {
		t.Errorf("the unanswered write: %v; want no acknowledgement within %v", err, timeout)
	}
	if err := ws[3].res.err; !errors.Is(err, jetstream.ErrNoStreamResponse) {
		t.Errorf("the write no stream takes: %v; want %v", err, jetstream.ErrNoStreamResponse)
	}
	if took < timeout || took > timeout+10*time.Second {
		t.Errorf("the group took %v; want the timeout, %v, and not much more", took, timeout)
	}
	if n, _, err := silent.Pending(); err != nil || n != 2 {
		t.Errorf("the silent subscriber got %d writes (%v), want 2", n, err)
	}
	c.acks.mu.Lock()
	left := len(c.acks.pend)
	c.acks.mu.Unlock()
	if left != 0 {
		t.Errorf("%d writes still wait for a reply", left)
	}
}

// groupWriteStore starts a NATS server with a store on it whose requests
// time out after timeout, and a stream of its own (name, its subjects
// name.>) that the test's group writes go to, with a connection nc of
// the test's.
func groupWriteStore(t *testing.T, timeout time.Duration) (s *Store, nc *nats.Conn, str jetstream.Stream, name string) {
	t.Helper()
	srv := natstest.Run(t)
	s = openWith(t, Config{URLs: []string{srv.URL()}, Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), SweepInterval: -1, Timeout: timeout})
	nc, js := natstest.Connect(t, srv.URL())
	name = fmt.Sprintf("ACKS%d", prefixes.Add(1))
	str, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}})
	if err != nil {
		t.Fatal(err)
	}
	return s, nc, str, name
}
