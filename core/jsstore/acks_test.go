package jsstore

import (
	"context"
	"fmt"
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
