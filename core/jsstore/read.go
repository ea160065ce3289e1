package jsstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edge-sync/edge-sync/core"
)

// object returns a reader of an entry's data: its message's own bytes, or
// its chunks in the data stream.
func (s *Store) object(m *meta) *core.Object {
	if m.data == "" {
		return core.NewObject(m.size, m.hash, bytes.NewReader(m.value))
	}
	return core.NewObject(m.size, m.hash, s.newBlobReader(m.data, m.size))
}

// Current returns the current version of key and a reader of its data.
func (s *Store) Current(agent, key string) (core.Version, *core.Object, error) {
	if err := s.acquire(); err != nil {
		return core.Version{}, nil, fmt.Errorf("current: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	cur, _, err := s.getState(ctx, agent, key)
	if err == nil && cur == nil {
		err = fmt.Errorf("key %q: %w", key, core.ErrNotFound)
	}
	if err == nil {
		err = checkInline(cur)
	}
	if err != nil {
		return core.Version{}, nil, fmt.Errorf("current: %w", err)
	}
	return cur.asVersion(), s.object(cur), nil
}

// Get is Current under the name the CLI uses.
func (s *Store) Get(agent, key string) (core.Version, *core.Object, error) {
	return s.Current(agent, key)
}

// checkInline refuses an entry whose inline data is not its declared size.
func checkInline(m *meta) error {
	if m.data == "" && int64(len(m.value)) != m.size {
		return fmt.Errorf("%w: key %q holds %d bytes, its header says %d", core.ErrCorrupt, m.key, len(m.value), m.size)
	}
	return nil
}

// knownAgent reports whether agent has stored anything (its counters
// exist, here or in the agents bucket).
func (s *Store) knownAgent(ctx context.Context, agent string) (bool, error) {
	s.counters.mu.Lock()
	_, pending := s.counters.pending[agent]
	_, inflight := s.counters.inflight[agent]
	_, local := s.counters.local[agent]
	s.counters.mu.Unlock()
	if pending || inflight || local {
		return true, nil
	}
	_, err := s.agents.Get(ctx, Token(agent))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// emptyList returns ErrNotFound for an agent that has stored nothing.
func (s *Store) emptyList(ctx context.Context, agent string) error {
	ok, err := s.knownAgent(ctx, agent)
	if err == nil && !ok {
		err = fmt.Errorf("agent %q: %w", agent, core.ErrNotFound)
	}
	return err
}

// lastEntries scans the last entry of each of agent's keys in a KV
// bucket's stream, with or without their data.
func (s *Store) lastEntries(ctx context.Context, st jetstream.Stream, bucket, agent string, headersOnly bool, fn func(m meta) error) error {
	return s.scan(ctx, st, jetstream.ConsumerConfig{
		FilterSubject: agentFilter("$KV."+bucket, agent), DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		HeadersOnly: headersOnly,
	}, func(msg jetstream.Msg) error {
		if msg.Headers().Get(kvOperation) != "" {
			return nil // deleted by someone
		}
		m, err := parseMeta(msg.Headers())
		if err != nil {
			return fmt.Errorf("%s: %w", msg.Subject(), err)
		}
		m.value = msg.Data()
		return fn(m)
	})
}

// Keys lists up to limit current versions whose key starts with prefix,
// in key order; limit <= 0 means no limit.
func (s *Store) Keys(agent, prefix string, limit int) ([]core.Version, error) {
	if err := s.acquire(); err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	ms, err := s.keyed(ctx, s.stateS, s.n.bucket(bucketState), agent, true, prefix, limit)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	out := make([]core.Version, len(ms))
	for i, m := range ms {
		out[i] = m.asVersion()
	}
	return out, nil
}

// keyed returns, in key order, up to limit (<= 0: all) of the last entries
// of agent's keys in a KV bucket's stream whose key starts with prefix; an
// agent that has stored nothing gives ErrNotFound.
func (s *Store) keyed(ctx context.Context, st jetstream.Stream, bucket, agent string, headersOnly bool, prefix string, limit int) ([]meta, error) {
	var ms []meta
	err := s.lastEntries(ctx, st, bucket, agent, headersOnly, func(m meta) error {
		if strings.HasPrefix(m.key, prefix) {
			ms = append(ms, m)
		}
		return nil
	})
	if err == nil && len(ms) == 0 {
		err = s.emptyList(ctx, agent)
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].key < ms[j].key })
	if limit > 0 && len(ms) > limit {
		ms = ms[:limit]
	}
	return ms, nil
}

// Events returns up to limit events with sequence numbers from fromSeq
// on, in arrival order; limit <= 0 means no limit. Sequence numbers are
// the events stream's: increasing, shared by all agents, so an agent's
// have gaps.
func (s *Store) Events(agent string, fromSeq uint64, limit int) ([]core.Event, error) {
	if err := s.acquire(); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	var out []core.Event
	err := s.scan(ctx, s.events, jetstream.ConsumerConfig{
		FilterSubject: agentFilter(s.n.subject(subjEvents), agent), HeadersOnly: true,
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: max(fromSeq, 1),
	}, func(msg jetstream.Msg) error {
		if limit > 0 && len(out) == limit {
			return errStop
		}
		m, err := parseMeta(msg.Headers())
		if err != nil {
			return fmt.Errorf("%s: %w", msg.Subject(), err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		out = append(out, m.event(md.Sequence.Stream))
		return nil
	})
	if err == nil && len(out) == 0 {
		err = s.emptyList(ctx, agent)
	}
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return out, nil
}

// EventData returns event seq of agent and a reader of its payload.
func (s *Store) EventData(agent string, seq uint64) (core.Event, *core.Object, error) {
	if err := s.acquire(); err != nil {
		return core.Event{}, nil, fmt.Errorf("event data: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	m, err := s.event(ctx, agent, seq)
	if err != nil {
		return core.Event{}, nil, fmt.Errorf("event data: %w", err)
	}
	return m.event(seq), s.object(m), nil
}

func (s *Store) event(ctx context.Context, agent string, seq uint64) (*meta, error) {
	msg, err := s.events.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) ||
		(err == nil && !strings.HasPrefix(msg.Subject, s.n.subject(subjEvents)+"."+Token(agent)+".")) {
		return nil, fmt.Errorf("event %d: %w", seq, core.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("event %d: %w", seq, err)
	}
	m, err := parseMeta(msg.Header)
	if err != nil {
		return nil, fmt.Errorf("event %d: %w", seq, err)
	}
	m.value = msg.Data
	if err := checkInline(&m); err != nil {
		return nil, fmt.Errorf("event %d: %w", seq, err)
	}
	return &m, nil
}

// PutSummary records the latest summary of a key. A summary older than
// the key's current summary is ignored.
func (s *Store) PutSummary(agent string, sum core.Summary) (err error) {
	defer markFull(&err)
	if err := core.CheckName(agent, sum.Key); err != nil {
		return fmt.Errorf("put summary: %w", err)
	}
	if len(sum.Bytes) > s.cfg.MaxSummaryBytes {
		return fmt.Errorf("put summary: %w: %d summary bytes, limit %d", core.ErrTooLarge, len(sum.Bytes), s.cfg.MaxSummaryBytes)
	}
	if sum.OpID.IsZero() {
		return fmt.Errorf("put summary: %w: zero op id", core.ErrInvalid)
	}
	if err := s.acquire(); err != nil {
		return fmt.Errorf("put summary: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	if sum.Time.IsZero() {
		sum.Time = s.cfg.Now()
	}
	subject := s.n.summarySubject(agent, sum.Key)
	m := meta{agent: agent, key: sum.Key, op: sum.OpID, size: sum.Size, hash: sum.Hash, time: sum.Time}
	for range casRetries {
		cur, rev, err := s.lastEntry(ctx, s.summS, subject)
		if err != nil {
			return fmt.Errorf("put summary: %w", err)
		}
		if cur != nil && cur.op.Compare(sum.OpID) > 0 {
			return nil
		}
		_, err = s.js.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: m.header(), Data: sum.Bytes},
			jetstream.WithExpectLastSequencePerSubject(rev))
		if isWrongLastSeq(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("put summary: %w", s.full(subject, err))
		}
		if cur == nil {
			s.counters.add(agent, core.AgentStats{Summaries: 1})
		}
		return nil
	}
	return fmt.Errorf("put summary: %w", errConflict)
}

// superseded reports whether a summary's op, or a newer one, is stored:
// the key's current version is that op or newer, or the op is applied
// (its entry in the applied bucket, or an event's marker).
// Unlike core.Store, which marks summaries as the data lands, it is
// worked out when the summary is read.
func (s *Store) superseded(ctx context.Context, agent string, m meta) (bool, error) {
	cur, _, err := s.getState(ctx, agent, m.key)
	if err != nil {
		return false, err
	}
	if cur != nil && cur.op.Compare(m.op) >= 0 {
		return true, nil
	}
	_, err = s.applied.Get(ctx, agentKey(agent, m.op.String()))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// An event's applied marker (events.go)?
		_, err = s.events.GetLastMsgForSubject(ctx, s.n.markerSubject(agent, m.op))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil
		}
	}
	return err == nil, err
}

// Summary returns the latest summary received for key.
func (s *Store) Summary(agent, key string) (core.Summary, error) {
	if err := s.acquire(); err != nil {
		return core.Summary{}, fmt.Errorf("summary: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	m, _, err := s.lastEntry(ctx, s.summS, s.n.summarySubject(agent, key))
	if err == nil && m == nil {
		err = fmt.Errorf("summary %q: %w", key, core.ErrNotFound)
	}
	if err != nil {
		return core.Summary{}, fmt.Errorf("summary: %w", err)
	}
	sum := m.summary(m.value)
	if sum.Superseded, err = s.superseded(ctx, agent, *m); err != nil {
		return core.Summary{}, fmt.Errorf("summary: %w", err)
	}
	return sum, nil
}

// Summaries lists up to limit summaries whose key starts with prefix, in
// key order.
func (s *Store) Summaries(agent, prefix string, limit int) ([]core.Summary, error) {
	if err := s.acquire(); err != nil {
		return nil, fmt.Errorf("summaries: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	ms, err := s.keyed(ctx, s.summS, s.n.bucket(bucketSummaries), agent, false, prefix, limit)
	if err != nil {
		return nil, fmt.Errorf("summaries: %w", err)
	}
	out := make([]core.Summary, len(ms))
	for i, m := range ms {
		out[i] = m.summary(m.value)
		if out[i].Superseded, err = s.superseded(ctx, agent, m); err != nil {
			return nil, fmt.Errorf("summaries: %w", err)
		}
	}
	return out, nil
}

// Partials lists an agent's partial ops that may be resumed: those in
// JetStream, and those this core holds in memory.
func (s *Store) Partials(agent string) ([]core.PartialInfo, error) {
	if err := s.acquire(); err != nil {
		return nil, fmt.Errorf("partials: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	out := s.mem.list(agent)
	err := s.partialRecords(ctx, agent, func(rec partialRec) error {
		if !rec.Ephemeral {
			out = append(out, core.PartialInfo{Header: rec.header(), Held: rec.Held, Reserved: rec.reserved()})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("partials: %w", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Header.OpID.Compare(out[j].Header.OpID) < 0 })
	return out, nil
}

// partialRecords scans an agent's partial records ("" for every agent's).
func (s *Store) partialRecords(ctx context.Context, agent string, fn func(partialRec) error) error {
	filter := "$KV." + s.n.bucket(bucketPartials) + ".>"
	if agent != "" {
		filter = agentFilter("$KV."+s.n.bucket(bucketPartials), agent)
	}
	return s.scan(ctx, s.partialsS, jetstream.ConsumerConfig{FilterSubject: filter, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy},
		func(msg jetstream.Msg) error {
			if len(msg.Data()) == 0 {
				return nil // a marker
			}
			var rec partialRec
			if err := decodeJSON("partial", msg.Data(), &rec); err != nil {
				return fmt.Errorf("%s: %w", msg.Subject(), err)
			}
			return fn(rec)
		})
}
