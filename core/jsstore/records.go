package jsstore

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
)

// hexHash is a SHA-256 written as hex in JSON records.
type hexHash [32]byte

func (h hexHash) MarshalText() ([]byte, error) { return []byte(hex.EncodeToString(h[:])), nil }

func (h *hexHash) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*h = hexHash{}
		return nil
	}
	if len(b) != 64 {
		return fmt.Errorf("sha256 of %d hex digits", len(b))
	}
	_, err := hex.Decode(h[:], b)
	return err
}

// appliedRec is the value of an entry of the applied-op index: what the
// op was, so that any core can tell whether its effect is visible.
type appliedRec struct {
	Kind   edgesync.OpKind `json:"kind"`
	Key    string          `json:"key"`
	Size   int64           `json:"size"`
	SHA256 hexHash         `json:"sha256"`
	At     time.Time       `json:"at"`   // the core's clock when the op was committed
	Core   string          `json:"core"` // the connection name of the core that did
}

// appendJSON appends the record as json.Marshal writes it: an applied
// entry is written for every op, and its fields are plain text in almost
// every case, which this writes without reflection. Anything else (a
// string JSON would escape, a kind or time it would refuse or write
// another way) goes through json.Marshal (TestAppliedRecJSON).
func (r appliedRec) appendJSON(b []byte) ([]byte, error) {
	if !r.Kind.Valid() || !jsonPlain(r.Key) || !jsonPlain(r.Core) || r.At.Year() < 0 || r.At.Year() > 9999 {
		j, err := json.Marshal(r)
		return append(b, j...), err
	}
	if _, off := r.At.Zone(); off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
		j, err := json.Marshal(r)
		return append(b, j...), err
	}
	b = append(b, `{"kind":"`...)
	b = append(b, r.Kind.String()...)
	b = append(b, `","key":"`...)
	b = append(b, r.Key...)
	b = append(b, `","size":`...)
	b = strconv.AppendInt(b, r.Size, 10)
	b = append(b, `,"sha256":"`...)
	b = hex.AppendEncode(b, r.SHA256[:])
	b = append(b, `","at":"`...)
	b = r.At.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","core":"`...)
	b = append(b, r.Core...)
	return append(b, `"}`...), nil
}

// jsonPlain reports whether json.Marshal writes s as it is between its
// quotes: printable ASCII that it neither escapes nor HTML-escapes.
func jsonPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// partialRec is the value of a partial op held in JetStream.
type partialRec struct {
	Agent      string            `json:"agent"`
	Op         edgesync.OpID     `json:"op"`
	Key        string            `json:"key"`
	Kind       edgesync.OpKind   `json:"kind"`
	Priority   edgesync.Priority `json:"priority"`
	Size       int64             `json:"size"`
	SHA256     hexHash           `json:"sha256"`
	HasBase    bool              `json:"has_base,omitempty"`
	BaseSHA256 hexHash           `json:"base_sha256,omitzero"`
	Blob       string            `json:"blob"` // its chunks are on P.data.<agent>.<blob>
	Held       int64             `json:"held"`
	Created    time.Time         `json:"created"`
	Updated    time.Time         `json:"updated"`
	Ephemeral  bool              `json:"ephemeral,omitempty"` // staged by Apply: not offered for resume
	// Released says the partial's receive ended without a commit
	// (ReleasePartial): it reserves only the bytes it holds against the
	// agent's quota, not its declared size, until it is received again.
	Released bool `json:"released,omitempty"`
}

// reserved is what the partial counts against the agent's quota.
func (p partialRec) reserved() int64 {
	if p.Released {
		return p.Held
	}
	return p.Size
}

func (p partialRec) header() core.PartialHeader {
	return core.PartialHeader{OpID: p.Op, Key: p.Key, Kind: p.Kind, Priority: p.Priority, Size: p.Size,
		Hash: p.SHA256, HasBase: p.HasBase, BaseHash: p.BaseSHA256}
}

func newPartialRec(agent string, h core.PartialHeader, blob string, now time.Time, ephemeral bool) partialRec {
	return partialRec{Agent: agent, Op: h.OpID, Key: h.Key, Kind: h.Kind, Priority: h.Priority, Size: h.Size,
		SHA256: h.Hash, HasBase: h.HasBase, BaseSHA256: h.BaseHash, Blob: blob, Created: now, Updated: now, Ephemeral: ephemeral}
}

// decodeJSON decodes a record, reporting damage as core.ErrCorrupt.
func decodeJSON(what string, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %s record: %v", core.ErrCorrupt, what, err)
	}
	return nil
}

// meta is what the headers of a state entry, an event or a summary say.
type meta struct {
	agent, key string
	op         edgesync.OpID
	kind       edgesync.OpKind
	priority   edgesync.Priority
	size       int64
	hash       [32]byte
	version    uint64    // state
	stored     time.Time // state, events
	time       time.Time // summaries
	data       string    // the chunks' subject when the data is not inline
	value      []byte    // the message's data: inline op data, or summary bytes
}

func (m meta) header() nats.Header { return m.headerWith(0, metaText{}) }

// metaText is text of meta's headers that the ops of one call share
// (their agent, the moment they were stored), made once for them all;
// an empty field is made from meta.
type metaText struct{ op, agent, stored string }

// headerWith is header with room for extra more headers, and t's texts
// where set. Every op's write builds one (docs/jetstream.md, "Connections
// and groups"), so it makes the map at its size and the values in one
// slice, and sets the keys as they are: they are in canonical form
// (TestHeaderNamesCanonical), as Header.Set would make them.
func (m meta) headerWith(extra int, t metaText) nats.Header {
	const most = 10
	h := make(nats.Header, most+extra)
	vals := make([]string, 0, most)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	if t.op == "" {
		t.op = m.op.String()
	}
	if t.agent == "" {
		t.agent = url.PathEscape(m.agent)
	}
	set(HdrOp, t.op)
	set(HdrAgent, t.agent)
	set(HdrKey, url.PathEscape(m.key))
	if m.kind.Valid() {
		set(HdrKind, m.kind.String())
		set(HdrPriority, m.priority.String())
	}
	set(HdrSize, strconv.FormatInt(m.size, 10))
	set(HdrSHA256, hex.EncodeToString(m.hash[:]))
	if m.version > 0 {
		set(HdrVersion, strconv.FormatUint(m.version, 10))
	}
	if t.stored == "" && !m.stored.IsZero() {
		t.stored = m.stored.UTC().Format(time.RFC3339Nano)
	}
	if t.stored != "" {
		set(HdrStored, t.stored)
	}
	if !m.time.IsZero() {
		set(HdrTime, m.time.UTC().Format(time.RFC3339Nano))
	}
	if m.data != "" {
		set(HdrData, m.data)
	}
	return h
}

// parseMeta reads the headers meta wrote; a missing or malformed one is
// core.ErrCorrupt.
func parseMeta(h nats.Header) (meta, error) {
	var m meta
	var errs []string
	bad := func(name string, err error) {
		errs = append(errs, fmt.Sprintf("%s: %v", name, err))
	}
	var err error
	if m.op, err = edgesync.ParseOpID(h.Get(HdrOp)); err != nil {
		bad(HdrOp, err)
	}
	if m.agent, err = url.PathUnescape(h.Get(HdrAgent)); err != nil {
		bad(HdrAgent, err)
	}
	if m.key, err = url.PathUnescape(h.Get(HdrKey)); err != nil {
		bad(HdrKey, err)
	}
	if k := h.Get(HdrKind); k != "" {
		if err := m.kind.UnmarshalText([]byte(k)); err != nil {
			bad(HdrKind, err)
		}
		if err := m.priority.UnmarshalText([]byte(h.Get(HdrPriority))); err != nil {
			bad(HdrPriority, err)
		}
	}
	if m.size, err = strconv.ParseInt(h.Get(HdrSize), 10, 64); err != nil || m.size < 0 {
		bad(HdrSize, fmt.Errorf("%q", h.Get(HdrSize)))
	}
	if b, err := hex.DecodeString(h.Get(HdrSHA256)); err != nil || len(b) != 32 {
		bad(HdrSHA256, fmt.Errorf("%q", h.Get(HdrSHA256)))
	} else {
		copy(m.hash[:], b)
	}
	if v := h.Get(HdrVersion); v != "" {
		if m.version, err = strconv.ParseUint(v, 10, 64); err != nil {
			bad(HdrVersion, err)
		}
	}
	if v := h.Get(HdrStored); v != "" {
		if m.stored, err = time.Parse(time.RFC3339Nano, v); err != nil {
			bad(HdrStored, err)
		}
	}
	if v := h.Get(HdrTime); v != "" {
		if m.time, err = time.Parse(time.RFC3339Nano, v); err != nil {
			bad(HdrTime, err)
		}
	}
	m.data = h.Get(HdrData)
	if len(errs) > 0 {
		return meta{}, fmt.Errorf("%w: headers %v", core.ErrCorrupt, errs)
	}
	return m, nil
}

func (m meta) asVersion() core.Version {
	return core.Version{Key: m.key, OpID: m.op, Size: m.size, Hash: m.hash, Priority: m.priority, Stored: m.stored, Version: m.version}
}

func (m meta) event(seq uint64) core.Event {
	return core.Event{Seq: seq, OpID: m.op, Key: m.key, Size: m.size, Hash: m.hash, Priority: m.priority, Stored: m.stored}
}

func (m meta) summary(value []byte) core.Summary {
	return core.Summary{OpID: m.op, Key: m.key, Size: m.size, Hash: m.hash, Time: m.time, Bytes: value}
}
