package jsstore

import (
	"encoding/json"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// FuzzQuickAckAsJSON: whatever quickAck reads as an acknowledgement,
// nats.go's PublishMsgAsync read the same way (encoding/json into its
// pubAckResponse: no error, no "error" member, a stream named): the same
// stream, sequence and duplicate flag (acks.go promises "parsed as
// PublishMsgAsync read them"). The seeds are the server's two forms and
// texts json.Unmarshal refuses that quickAck must refuse too: a number
// with a leading zero, a control character or bytes that are not UTF-8
// in the stream's name.
func FuzzQuickAckAsJSON(f *testing.F) {
	for _, s := range []string{
		`{"stream":"S","seq":1}`,
		`{"stream":"KV_x","seq":18446744073709551615,"duplicate": true}`,
		`{"stream":"S","seq":1,"duplicate":true}`,
		`{"stream":"S","seq":01}`,
		`{"stream":"S","seq":00}`,
		"{\"stream\":\"S\x01\",\"seq\":1}",
		"{\"stream\":\"\xff\",\"seq\":1}",
		`{"stream":"été","seq":7}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ack, ok := quickAck(data)
		if !ok {
			return
		}
		var r struct {
			Error *jetstream.APIError `json:"error"`
			*jetstream.PubAck
		}
		if err := json.Unmarshal(data, &r); err != nil {
			t.Fatalf("quickAck read %q as %+v; encoding/json refuses it (nats.go: ErrInvalidJSAck): %v", data, *ack, err)
		}
		if r.Error != nil || r.PubAck == nil || r.Stream == "" {
			t.Fatalf("quickAck read %q as %+v; nats.go read no acknowledgement in it", data, *ack)
		}
		if *r.PubAck != *ack {
			t.Fatalf("quickAck read %q as %+v; nats.go read %+v", data, *ack, *r.PubAck)
		}
	})
}
