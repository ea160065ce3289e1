package jsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
)

// One write per event (docs/jetstream.md, "Exactly once"): an event's
// applied marker is a message on P.applied.<agent>.<op> in the events
// stream, published with the event in one atomic batch. The marker goes
// first, create-only (Nats-Expected-Last-Subject-Sequence: 0), so the
// batch fails as a whole if the op has a marker; the event follows and
// commits the batch. Both become visible or neither, so a core whose
// batch is refused because the marker exists knows the event is there,
// right after the marker (a batch's messages take consecutive sequence
// numbers), and acknowledges a duplicate. The marker ages out after
// AppliedMaxAge by its own Nats-TTL, as the applied bucket's entries do.
//
// On a single-replica events stream the server stages every atomic batch
// in a store of its own on disk, with three fsyncs, before committing it:
// there an event costs far more as a batch than as two writes (README,
// BenchmarkStoreEvent), so a store with Replicas 1 keeps the applied
// bucket for events too (apply.go) and uses no batches.
//
// A store that changes between the two (its replicas changed, or it was
// written before batches) has events applied both ways: ops applied
// without batches have their entry in the applied bucket, ops applied
// with batches their marker. Until the older kind has aged out (the
// stream's metadata says when: metaLegacyUntil, metaMarkersUntil), an
// event's commit looks there first.

// errCodeAtomicDisabled is the server's refusal of a batch to a stream
// without allow_atomic (nats-server's JSAtomicPublishDisabledErr).
const errCodeAtomicDisabled jetstream.ErrorCode = 10174

// Batch headers (nats-server's atomic batch publish).
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// metaLegacyUntil is the events stream's metadata key that says until
// when the applied bucket may hold entries of events (RFC 3339): set when
// a store written without batches is opened with them. metaMarkersUntil
// says until when the stream may hold markers: set when a store written
// with batches is opened without.
const (
	metaLegacyUntil  = "edge_sync_legacy_applied_until"
	metaMarkersUntil = "edge_sync_markers_until"
)

// legacyMargin absorbs clock differences between cores and NATS nodes in
// the legacy window.
const legacyMargin = time.Hour

// markerSubject is the subject of an event op's applied marker.
func (n names) markerSubject(agent string, op edgesync.OpID) string {
	return n.subject(subjApplied) + "." + agentKey(agent, op.String())
}

// eventsMetadata returns the events stream's metadata given the stream
// as it is (nil if there is none): a stream that changes between
// batches and none gets the end of the window in which the other kind of
// entry may be found; one that has a window keeps it.
func (s *Store) eventsMetadata(old *jetstream.StreamInfo) map[string]string {
	md := map[string]string{}
	if old == nil {
		return md
	}
	for _, k := range []string{metaLegacyUntil, metaMarkersUntil} {
		if v := old.Config.Metadata[k]; v != "" {
			md[k] = v
		}
	}
	until := s.cfg.Now().Add(s.cfg.AppliedMaxAge + legacyMargin).UTC().Format(time.RFC3339)
	switch {
	case s.batches && !old.Config.AllowAtomicPublish:
		md[metaLegacyUntil] = until
	case !s.batches && old.Config.AllowAtomicPublish:
		md[metaMarkersUntil] = until
	}
	return md
}

// setWindows reads the windows from the events stream's metadata.
func (s *Store) setWindows(md map[string]string) error {
	for k, t := range map[string]*time.Time{metaLegacyUntil: &s.legacyUntil, metaMarkersUntil: &s.markersUntil} {
		v := md[k]
		if v == "" {
			continue
		}
		var err error
		if *t, err = time.Parse(time.RFC3339, v); err != nil {
			return fmt.Errorf("stream %s: metadata %s: %w", s.n.stream(streamEvents), k, err)
		}
	}
	return nil
}

// legacy reports whether the applied bucket may still hold entries of
// events applied without batches.
func (s *Store) legacy() bool { return !s.legacyUntil.IsZero() && s.cfg.Now().Before(s.legacyUntil) }

// markersLive reports whether the events stream may still hold markers
// of events applied with batches.
func (s *Store) markersLive() bool {
	return !s.markersUntil.IsZero() && s.cfg.Now().Before(s.markersUntil)
}

// commitEvent makes an event op visible exactly once: its marker and the
// event in one atomic batch.
func (s *Store) commitEvent(ctx context.Context, agent string, hdr core.PartialHeader, data []byte, blob string) (core.Result, bool, error) {
	res := core.Result{OpID: hdr.OpID, Kind: hdr.Kind, Key: hdr.Key, Size: hdr.Size, Hash: hdr.Hash}
	if s.legacy() {
		eff, _, err := s.legacyEffect(ctx, agent, hdr.OpID)
		if err != nil {
			return res, false, err
		}
		if eff.visible {
			return s.duplicateEvent(agent, hdr, eff, blob)
		}
		// An entry without its event: a core that wrote without batches
		// died between them. Every core uses batches now, so none will
		// publish it: the batch below does.
	}
	marker, ev, err := s.eventBatch(agent, hdr, data, blob)
	if err != nil {
		return res, false, err
	}
	ack, err := s.publishBatch(ctx, s.oc(), marker, ev)
	if isWrongLastSeq(err) {
		// The op has a marker (or, on a replicated stream, another core's
		// batch for it is in flight: then there is none yet, and the
		// agent sends the op again).
		return s.markedEvent(ctx, res, agent, hdr, blob)
	}
	if apiErr := (*jetstream.APIError)(nil); errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeAtomicDisabled {
		return res, false, fmt.Errorf("event: %w: %w", err, s.errLayout())
	}
	if err != nil {
		return res, false, fmt.Errorf("event: %w", err)
	}
	hook("event-batch")
	res.Seq = ack.Sequence
	s.counters.add(agent, core.AgentStats{Events: 1, EventBytes: hdr.Size, Bytes: hdr.Size})
	return res, blob != "", nil
}

// eventBatch returns an event op's atomic batch: its marker, then the
// event, which commits the batch.
func (s *Store) eventBatch(agent string, hdr core.PartialHeader, data []byte, blob string) (marker, ev *nats.Msg, err error) {
	b, err := s.appliedValue(hdr)
	if err != nil {
		return nil, nil, err
	}
	id := nuid.Next()
	marker = &nats.Msg{Subject: s.n.markerSubject(agent, hdr.OpID), Data: b, Header: nats.Header{}}
	marker.Header.Set(hdrBatchID, id)
	marker.Header.Set(hdrBatchSeq, "1")
	marker.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	marker.Header.Set(jetstream.MsgTTLHeader, strconv.FormatInt(int64(max(s.cfg.AppliedMaxAge, time.Second)/time.Second), 10))
	ev = s.eventMsg(agent, hdr, data, blob)
	ev.Header.Set(hdrBatchID, id)
	ev.Header.Set(hdrBatchSeq, "2")
	ev.Header.Set(hdrBatchCommit, "1")
	return marker, ev, nil
}

// appliedValue is the applied record of op hdr applied now by this core:
// an applied entry's value, or an event's marker.
func (s *Store) appliedValue(hdr core.PartialHeader) ([]byte, error) {
	return s.appliedAt(hdr, s.cfg.Now())
}

// appliedAt is appliedValue for an op applied at now.
func (s *Store) appliedAt(hdr core.PartialHeader, now time.Time) ([]byte, error) {
	return appliedRec{Kind: hdr.Kind, Key: hdr.Key, Size: hdr.Size, SHA256: hdr.Hash, At: now, Core: s.cfg.Name}.appendJSON(nil)
}

// eventMsg is the op's message in the events stream: its subject, its
// headers (meta) and its data (none when blob names where it is).
func (s *Store) eventMsg(agent string, hdr core.PartialHeader, data []byte, blob string) *nats.Msg {
	m := meta{agent: agent, key: hdr.Key, op: hdr.OpID, kind: hdr.Kind, priority: hdr.Priority, size: hdr.Size,
		hash: hdr.Hash, stored: s.cfg.Now(), data: blob}
	// Room for what its publish adds: a message ID or batch headers, and
	// the condition on its marker.
	return &nats.Msg{Subject: s.n.eventSubject(agent, hdr.Key), Header: m.headerWith(3, metaText{}), Data: data}
}

// markedEvent answers an event op whose publish found its marker: a
// duplicate once the marker's effect is visible, errConflict (the agent
// sends the op again) while it is not.
func (s *Store) markedEvent(ctx context.Context, res core.Result, agent string, hdr core.PartialHeader, blob string) (core.Result, bool, error) {
	eff, _, err := s.markerEffect(ctx, agent, hdr.OpID)
	if err != nil {
		return res, false, err
	}
	if !eff.visible {
		return res, false, errConflict
	}
	return s.duplicateEvent(agent, hdr, eff, blob)
}

// duplicateEvent describes an event op found applied.
func (s *Store) duplicateEvent(agent string, hdr core.PartialHeader, eff effectOf, blob string) (core.Result, bool, error) {
	s.counters.add(agent, core.AgentStats{Dedups: 1})
	eff.res.Duplicate = true
	eff.res.Size, eff.res.Hash = hdr.Size, hdr.Hash
	return eff.res, blob != "" && eff.data == blob, nil
}

// markerEffect reads an event op's marker: its effect is visible if it is
// there (the event came in the same batch, right after it).
func (s *Store) markerEffect(ctx context.Context, agent string, op edgesync.OpID) (effectOf, appliedRec, error) {
	var rec appliedRec
	mk, err := s.events.GetLastMsgForSubject(ctx, s.n.markerSubject(agent, op))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return effectOf{}, rec, nil
	}
	if err != nil {
		return effectOf{}, rec, fmt.Errorf("applied marker: %w", err)
	}
	if err := decodeJSON("applied", mk.Data, &rec); err != nil {
		return effectOf{}, rec, err
	}
	eff := effectOf{visible: true, res: core.Result{OpID: op, Kind: rec.Kind, Key: rec.Key, Seq: mk.Sequence + 1}}
	ev, err := s.events.GetMsg(ctx, mk.Sequence+1)
	switch {
	case err == nil && ev.Header.Get(HdrOp) == op.String():
		eff.data = ev.Header.Get(HdrData)
	case err == nil:
		return effectOf{}, rec, fmt.Errorf("applied marker of %s at %d: the next message is not its event but %s", op, mk.Sequence, ev.Subject)
	case !errors.Is(err, jetstream.ErrMsgNotFound): // not found: dropped by retention since
		return effectOf{}, rec, fmt.Errorf("event of %s: %w", op, err)
	}
	return eff, rec, nil
}

// legacyEffect looks an op up in the applied bucket, as the earlier
// layout did for every op (and this one does for state ops).
func (s *Store) legacyEffect(ctx context.Context, agent string, op edgesync.OpID) (effectOf, appliedRec, error) {
	var rec appliedRec
	e, err := s.applied.Get(ctx, agentKey(agent, op.String()))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return effectOf{}, rec, nil
	}
	if err != nil {
		return effectOf{}, rec, fmt.Errorf("applied index: %w", err)
	}
	if err := decodeJSON("applied", e.Value(), &rec); err != nil {
		return effectOf{}, rec, err
	}
	eff, err := s.effect(ctx, agent, op, rec.Kind, rec.Key, e.Created())
	return eff, rec, err
}

// noMarker makes msg, an event published without a batch, conditional on
// its op having no marker: a core that opened the store without batches
// does not look for markers unless the store had them when it opened
// (markersLive), yet another core may have opened it with batches since,
// as in a rolling change of replicas (docs/jetstream.md, "Changing
// between the two"). The server checks this with the write, so no marker
// can come between a look and the publish.
func noMarker(msg *nats.Msg, marker string) {
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, "0")
	msg.Header.Set(jetstream.ExpectedLastSubjSeqSubjHeader, marker)
}

// serverAtLeast reports whether a NATS server's version is major.minor or
// later.
func serverAtLeast(version string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(version, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// checkLayout reads the events stream's config and, if another core has
// opened it the other way since this one did (with batches or without:
// its replicas changed, docs/jetstream.md "Changing between the two"),
// makes this core refuse events until it is restarted. A core left
// committing events without batches would otherwise write applied
// entries that the cores with batches stop looking up when their legacy
// window, an hour past dedup_retention from the change, ends. The
// background loop runs it every SweepInterval.
func (s *Store) checkLayout(ctx context.Context) {
	if s.cfg.ReadOnly || s.layoutChanged.Load() {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	info, err := s.events.Info(rctx)
	if err != nil {
		return // the next interval tries again; commits report the server's state
	}
	if info.Config.AllowAtomicPublish != s.batches {
		s.layoutChanged.Store(true)
		s.cfg.Logger.Error("events refused until this core is restarted", "error", s.errLayout())
	}
}

// errLayout says that the events stream changed under this core.
func (s *Store) errLayout() error {
	now, was := "without atomic batches (one replica)", "with"
	if !s.batches {
		now, was = "with atomic batches (replicas 2 or more)", "without"
	}
	return fmt.Errorf("the events stream %s is now %s, as another core opened it, and this core opened it %s: "+
		"restart this core with the replicas the others have (docs/jetstream.md, \"Changing between the two\")",
		s.n.stream(streamEvents), now, was)
}
