package jsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/edge-sync/edge-sync/core"
	"github.com/edge-sync/edge-sync/internal/units"
)

// What JetStream answers a write it has no room for, and how the core
// hears of it: as core.ErrStoreFull, which the core answers store-full, as
// it does the bbolt store's full disk (docs/jetstream.md, "When JetStream
// is full"). Every stream of the store refuses a new message at a limit
// rather than drop an old one (discard new), so that room runs out this
// way and no other.
const (
	// errCodeAccountLimits: the account's JetStream limits (its
	// max_file_store, or a tier's) are used up.
	errCodeAccountLimits jetstream.ErrorCode = 10002
	// errCodeInsufficientResources: the server's JetStream storage
	// (max_file_store) is used up.
	errCodeInsufficientResources jetstream.ErrorCode = 10023
	// errCodeStorageExceeded: a stream or bucket would need more storage
	// than the server or account has left.
	errCodeStorageExceeded jetstream.ErrorCode = 10047
	// errCodeStoreFailed: the stream refused the message; "maximum bytes
	// exceeded", "maximum messages exceeded" and "maximum messages per
	// subject exceeded" are its own limits (max_bytes, max_msgs,
	// max_msgs_per_subject, with discard new).
	errCodeStoreFailed jetstream.ErrorCode = 10077
)

// streamLimits are the descriptions of errCodeStoreFailed that are a
// stream's own limits, and the limits' names. Others ("message size
// exceeds maximum allowed") are no want of room: waiting would not make
// the write fit.
var streamLimits = []struct{ desc, limit, flag string }{
	{"maximum bytes exceeded", "max_bytes", "--max-bytes"},
	{"maximum messages exceeded", "max_msgs", "--max-msgs"},
	{"maximum messages per subject exceeded", "max_msgs_per_subject", "--max-msgs-per-subject"},
}

// noRoom reports whether err is JetStream refusing a write for want of
// room.
func noRoom(err error) bool {
	apiErr, ok := errors.AsType[*jetstream.APIError](err)
	if !ok {
		return false
	}
	switch apiErr.ErrorCode {
	case errCodeAccountLimits, errCodeInsufficientResources, errCodeStorageExceeded:
		return true
	case errCodeStoreFailed:
		return streamLimit(apiErr) >= 0
	}
	return false
}

// streamLimit is the index in streamLimits of the limit apiErr says a
// stream is at, -1 if none.
func streamLimit(apiErr *jetstream.APIError) int {
	for i, l := range streamLimits {
		if strings.Contains(apiErr.Description, l.desc) {
			return i
		}
	}
	return -1
}

// markFull makes *err wrap core.ErrStoreFull when it says JetStream has no
// room; the Backend's methods that write defer it.
func markFull(err *error) {
	if *err != nil && noRoom(*err) && !errors.Is(*err, core.ErrStoreFull) {
		*err = fmt.Errorf("%w: %w", core.ErrStoreFull, *err)
	}
}

// full names the stream that refused a write to subject for want of room,
// and what to do; any other err it returns as it is.
func (s *Store) full(subject string, err error) error {
	if err == nil || !noRoom(err) {
		return err
	}
	stream := s.streamOf(subject)
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok && apiErr.ErrorCode == errCodeStoreFailed {
		l := streamLimits[streamLimit(apiErr)]
		return fmt.Errorf("stream %s is at its %s: raise it (nats stream edit %s %s) or make room in it "+
			"(docs/jetstream.md, \"When JetStream is full\"): %w", stream, l.limit, stream, l.flag, err)
	}
	return fmt.Errorf("stream %s: JetStream's storage is used up (the server's max_file_store or the account's limits): "+
		"raise it or free the server's disk: %w", stream, err)
}

// kvFull is full for a write to bucket (its name without the prefix).
func (s *Store) kvFull(bucket string, err error) error {
	return s.full("$KV."+s.n.bucket(bucket)+".", err)
}

// streamOf is the stream of the store that holds subject.
func (s *Store) streamOf(subject string) string {
	if rest, ok := strings.CutPrefix(subject, "$KV."); ok {
		bucket, _, _ := strings.Cut(rest, ".")
		return kvStream(bucket)
	}
	if strings.HasPrefix(subject, s.n.subject(subjData)+".") {
		return s.n.stream(streamData)
	}
	return s.n.stream(streamEvents)
}

// keepLimits gives cfg, the stream's config as this version makes it, the
// limits an operator set on the stream as it is (max_bytes, max_msgs,
// and with perSubject max_msgs_per_subject): they stay, and with discard
// new they refuse writes rather than drop what is stored. It returns the
// stream's info, nil if there is no such stream yet.
func (s *Store) keepLimits(ctx context.Context, cfg *jetstream.StreamConfig, perSubject bool) (*jetstream.StreamInfo, error) {
	old, err := s.js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	info := old.CachedInfo()
	was := info.Config
	if was.MaxBytes > 0 {
		cfg.MaxBytes = was.MaxBytes
	}
	if was.MaxMsgs > 0 {
		cfg.MaxMsgs = was.MaxMsgs
	}
	if perSubject && was.MaxMsgsPerSubject > 0 {
		cfg.MaxMsgsPerSubject = was.MaxMsgsPerSubject
		cfg.DiscardNewPerSubject = true
	}
	if was.MaxBytes > 0 || was.MaxMsgs > 0 || perSubject && was.MaxMsgsPerSubject > 0 {
		lost := ""
		if was.Discard == jetstream.DiscardOld || perSubject && was.MaxMsgsPerSubject > 0 && !was.DiscardNewPerSubject {
			lost = "; it dropped its oldest messages at them until now, and refuses new ones from now on"
		}
		s.cfg.Logger.Info("stream keeps the limits set on it: writes past them are refused (store-full)"+lost,
			"stream", cfg.Name, "max_bytes", was.MaxBytes, "max_msgs", was.MaxMsgs, "max_msgs_per_subject", cfg.MaxMsgsPerSubject)
	}
	return info, nil
}

// checkDiscard sets discard new again on the events and data streams if
// it finds them discarding old messages at a limit (`nats stream edit
// --discard old`, or a core of an earlier version that opened the store
// since), and logs an error that says so: until then a limit drops
// acknowledged ops. Run at each sweep interval.
func (s *Store) checkDiscard(ctx context.Context) {
	if s.cfg.ReadOnly {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	for _, st := range []jetstream.Stream{s.events, s.data} {
		info, err := st.Info(rctx)
		if err != nil || info.Config.Discard == jetstream.DiscardNew {
			continue // an error: the next interval tries again
		}
		cfg := info.Config
		cfg.Discard = jetstream.DiscardNew
		const was = "a stream discarded its oldest messages at a limit: acknowledged ops were dropped if it reached one; "
		if _, err := s.js.UpdateStream(rctx, cfg); err != nil {
			s.cfg.Logger.Error(was+"setting it back to discard new failed: run `nats stream edit "+cfg.Name+" --discard new` "+
				"(all cores on one JetStream must run this version; do not edit a stream's discard policy)",
				"stream", cfg.Name, "max_bytes", cfg.MaxBytes, "max_msgs", cfg.MaxMsgs, "error", err)
			continue
		}
		s.cfg.Logger.Error(was+"it is set back to discard new "+
			"(all cores on one JetStream must run this version; do not edit a stream's discard policy)",
			"stream", cfg.Name, "max_bytes", cfg.MaxBytes, "max_msgs", cfg.MaxMsgs)
	}
}

// Room says where the store keeps its data and what to do when JetStream
// has no room: the streams at (or within a chunk of) their own limits,
// with the room they have left, and the account's storage if it is
// limited. Called when a write was refused (at most once a minute, by the
// core's log); it asks JetStream.
func (s *Store) Room() core.Room {
	at := " at " + strings.Join(s.cfg.URLs, ",")
	r := core.Room{Where: fmt.Sprintf("JetStream streams %s_* and their buckets", s.n.prefix) + at, Free: -1,
		Action: "give JetStream room: raise the NATS server's max_file_store (or the account's limits) or free its disk, " +
			"or raise the limit of the stream at it; the refused ops stay queued at their agents and arrive by themselves once there is room " +
			"(docs/jetstream.md, \"When JetStream is full\")"}
	if err := s.acquire(); err != nil {
		return r
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	var full []string
	for _, st := range []jetstream.Stream{s.events, s.data, s.stateS, s.summS, s.appliedS, s.partialsS, s.agentsS} {
		info, err := st.Info(ctx)
		if err != nil {
			continue
		}
		if l, left, ok := s.atLimit(info); ok {
			full = append(full, l)
			if r.Free < 0 || left < r.Free {
				r.Free = left
			}
		}
	}
	if len(full) > 0 {
		r.Where = "JetStream stream " + strings.Join(full, ", ") + at
		r.Action = "raise the stream's limit (nats stream edit <stream> --max-bytes or --max-msgs; every core keeps it) " +
			"or make room in it: a lower event_retention, which the sweep applies, or delete events applications have consumed; " +
			"the refused ops stay queued at their agents and arrive by themselves once there is room (docs/jetstream.md, \"When JetStream is full\")"
		return r
	}
	if ai, err := s.js.AccountInfo(ctx); err == nil && ai.Limits.MaxStore > 0 {
		left := max(ai.Limits.MaxStore-int64(ai.Store), 0)
		r.Where += fmt.Sprintf(" (the account's JetStream storage: %s of max_store %s used)",
			units.FormatBytes(int64(ai.Store)), units.FormatBytes(ai.Limits.MaxStore))
		r.Free = left
	}
	return r
}

// atLimit says whether the stream of info is at one of its own limits, or
// within a chunk of it: the limit, and the bytes left under max_bytes (-1
// if it has none).
func (s *Store) atLimit(info *jetstream.StreamInfo) (string, int64, bool) {
	cfg, st := info.Config, info.State
	slack := max(s.cfg.InlineMax, int64(s.cfg.ChunkSize)) + 64<<10
	left := int64(-1)
	var at []string
	if cfg.MaxBytes > 0 {
		left = max(cfg.MaxBytes-int64(st.Bytes), 0)
		if left < slack {
			at = append(at, fmt.Sprintf("max_bytes %s, %s held", units.FormatBytes(cfg.MaxBytes), units.FormatBytes(int64(st.Bytes))))
		}
	}
	if cfg.MaxMsgs > 0 && int64(st.Msgs) >= cfg.MaxMsgs {
		at = append(at, fmt.Sprintf("max_msgs %d, %d held", cfg.MaxMsgs, st.Msgs))
	}
	if len(at) == 0 {
		return "", left, false
	}
	return fmt.Sprintf("%s (%s)", cfg.Name, strings.Join(at, "; ")), left, true
}
