package jsstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/textproto"
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"pgregory.net/rapid"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/core/storetest"
	"github.com/edge-sync/edge-sync/internal/natstest"
)

// TestAppliedRecJSON: the applied record written without reflection is
// byte for byte json.Marshal's, for any kind, text, size and time, and
// both fail alike.
func TestAppliedRecJSON(t *testing.T) {
	text := rapid.OneOf(rapid.StringMatching(`[ -~]{0,20}`), rapid.String())
	rapid.Check(t, func(rt *rapid.T) {
		sec := rapid.Int64Range(-70_000_000_000, 300_000_000_000).Draw(rt, "sec")
		zone := time.FixedZone("z", rapid.IntRange(-30*3600, 30*3600).Draw(rt, "offset"))
		r := appliedRec{
			Kind: edgesync.OpKind(rapid.IntRange(0, 3).Draw(rt, "kind")),
			Key:  text.Draw(rt, "key"),
			Size: rapid.Int64().Draw(rt, "size"),
			At:   time.Unix(sec, rapid.Int64Range(0, 999_999_999).Draw(rt, "nsec")).In(zone),
			Core: text.Draw(rt, "core"),
		}
		copy(r.SHA256[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(rt, "sha256"))
		want, werr := json.Marshal(r)
		got, err := r.appendJSON([]byte("prefix"))
		if (err == nil) != (werr == nil) {
			rt.Fatalf("appendJSON error %v, json.Marshal's %v", err, werr)
		}
		if err == nil && !bytes.Equal(got, append([]byte("prefix"), want...)) {
			rt.Fatalf("appendJSON wrote\n%s\njson.Marshal\n%s", got[len("prefix"):], want)
		}
	})
}

// TestHeaderNamesCanonical: the headers that headerWith and
// eventsTwoWrites set without Header.Set are in the form Set would give
// them; a name that is not would be a second header of the same name.
func TestHeaderNamesCanonical(t *testing.T) {
	for _, k := range []string{HdrOp, HdrAgent, HdrKey, HdrKind, HdrPriority, HdrSize, HdrSHA256, HdrVersion,
		HdrStored, HdrTime, HdrData, jetstream.MsgIDHeader, jetstream.ExpectedLastSubjSeqHeader} {
		if c := textproto.CanonicalMIMEHeaderKey(k); c != k {
			t.Errorf("header %q is %q in canonical form", k, c)
		}
	}
}

// TestHeaderWithAsSet: headerWith gives the headers that Header.Set of
// each gave, for any meta, with the shared text or without.
func TestHeaderWithAsSet(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		m := meta{agent: rapid.String().Draw(rt, "agent"), key: rapid.String().Draw(rt, "key"),
			kind:     edgesync.OpKind(rapid.IntRange(0, 2).Draw(rt, "kind")),
			priority: edgesync.Priority(rapid.IntRange(0, 3).Draw(rt, "priority")),
			size:     rapid.Int64().Draw(rt, "size"), version: rapid.Uint64Range(0, 3).Draw(rt, "version"),
			data: rapid.SampledFrom([]string{"", "t.data.x"}).Draw(rt, "data")}
		copy(m.op[:], rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(rt, "op"))
		copy(m.hash[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(rt, "hash"))
		if rapid.Bool().Draw(rt, "stored") {
			m.stored = time.Unix(rapid.Int64Range(0, 4e9).Draw(rt, "at"), 0)
		}
		if rapid.Bool().Draw(rt, "time") {
			m.time = time.Unix(rapid.Int64Range(0, 4e9).Draw(rt, "t"), 0)
		}
		want := setHeader(m)
		if got := m.header(); !reflect.DeepEqual(got, want) {
			rt.Fatalf("header() = %v, want %v", got, want)
		}
		text := metaText{op: want.Get(HdrOp), agent: want.Get(HdrAgent), stored: want.Get(HdrStored)}
		if got := m.headerWith(3, text); !reflect.DeepEqual(got, want) {
			rt.Fatalf("headerWith(3, %+v) = %v, want %v", text, got, want)
		}
	})
}

// setHeader is the headers of m made as header made them before it
// built its map itself: Header.Set of each.
func setHeader(m meta) nats.Header {
	h := nats.Header{}
	h.Set(HdrOp, m.op.String())
	h.Set(HdrAgent, url.PathEscape(m.agent))
	h.Set(HdrKey, url.PathEscape(m.key))
	if m.kind.Valid() {
		h.Set(HdrKind, m.kind.String())
		h.Set(HdrPriority, m.priority.String())
	}
	h.Set(HdrSize, strconv.FormatInt(m.size, 10))
	h.Set(HdrSHA256, hex.EncodeToString(m.hash[:]))
	if m.version > 0 {
		h.Set(HdrVersion, strconv.FormatUint(m.version, 10))
	}
	if !m.stored.IsZero() {
		h.Set(HdrStored, m.stored.UTC().Format(time.RFC3339Nano))
	}
	if !m.time.IsZero() {
		h.Set(HdrTime, m.time.UTC().Format(time.RFC3339Nano))
	}
	if m.data != "" {
		h.Set(HdrData, m.data)
	}
	return h
}

// TestWholeOpsWritesAsApply: the applied entries and events that
// ApplyWholeOps writes for a stream's small events (one replica, two
// writes each) are the messages the single op's path writes: the same
// subjects, the same headers (the applied entry's create-only condition,
// the event's metadata, its de-duplication ID and, with the marker
// guard, its condition on the marker), and the same record.
func TestWholeOpsWritesAsApply(t *testing.T) {
	srv := natstest.Run(t)
	s := openWith(t, Config{URLs: []string{srv.URL()}, Prefix: "wa", Name: "core-a"})
	if s.batches {
		t.Fatal("a store of one replica commits events with batches")
	}
	agent := "ship.7 é" // escaped in subjects and headers
	var ops []core.WholeOp
	for i := range 3 {
		data := storetest.Payload(uint64(i), 100)
		hdr := core.PartialHeader{OpID: storetest.OpID(uint64(i + 1)), Key: []string{"k/a", "k/a", "k b"}[i], Kind: edgesync.EventOp,
			Priority: edgesync.Normal, Size: int64(len(data)), Hash: sha256.Sum256(data)}
		ops = append(ops, core.WholeOp{Header: hdr, Data: data})
	}
	for i, r := range s.ApplyWholeOps(agent, ops) {
		if r.Err != nil || r.Result.Duplicate {
			t.Fatalf("op %d: %+v, %v", i, r.Result, r.Err)
		}
	}
	ctx := context.Background()
	revs := map[string]uint64{}
	for i, op := range ops {
		hdr := op.Header
		e, err := s.applied.Get(ctx, agentKey(agent, hdr.OpID.String()))
		if err != nil {
			t.Fatalf("op %d's applied entry: %v", i, err)
		}
		revs[e.Key()] = e.Revision()
		var rec appliedRec
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			t.Fatalf("op %d's applied entry %q: %v", i, e.Value(), err)
		}
		if rec.Kind != hdr.Kind || rec.Key != hdr.Key || rec.Size != hdr.Size || rec.SHA256 != hdr.Hash || rec.Core != "core-a" || rec.At.IsZero() {
			t.Errorf("op %d's applied entry %+v, op %+v", i, rec, hdr)
		}
		raw, err := s.events.GetLastMsgForSubject(ctx, s.n.eventSubject(agent, hdr.Key))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 { // op 1's event is not its key's last: find it by sequence
			raw, err = s.events.GetMsg(ctx, raw.Sequence-1)
			if err != nil {
				t.Fatal(err)
			}
		}
		// What publishEvent writes, with jetstream.WithMsgID's header.
		want := s.eventMsg(agent, hdr, op.Data, "")
		if s.markerGuard {
			noMarker(want, s.n.markerSubject(agent, hdr.OpID))
		}
		want.Header.Set(jetstream.MsgIDHeader, agentKey(agent, hdr.OpID.String()))
		got := raw.Header
		stored := got.Get(HdrStored)
		got.Del(HdrStored) // the moment differs
		want.Header.Del(HdrStored)
		if raw.Subject != want.Subject || !reflect.DeepEqual(got, want.Header) || !bytes.Equal(raw.Data, op.Data) {
			t.Errorf("op %d's event: %s %v %d bytes; want %s %v", i, raw.Subject, got, len(raw.Data), want.Subject, want.Header)
		}
		if _, err := time.Parse(time.RFC3339Nano, stored); err != nil {
			t.Errorf("op %d's event stored at %q: %v", i, stored, err)
		}
	}
	// Sent again, each is a duplicate: the entries and IDs did their work.
	for i, r := range s.ApplyWholeOps(agent, ops) {
		if r.Err != nil || !r.Result.Duplicate {
			t.Errorf("op %d again: %+v, %v; want a duplicate", i, r.Result, r.Err)
		}
	}
	// Their entries were created only once: the create is conditional.
	for k, rev := range revs {
		if e, err := s.applied.Get(ctx, k); err != nil || e.Revision() != rev {
			t.Errorf("applied entry %s after the ops came again: %v, %v; want revision %d", k, e, err, rev)
		}
	}
}
