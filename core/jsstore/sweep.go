package jsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/edge-sync/edge-sync/core"
)

// gcMinAge is how old a blob's last message must be before garbage
// collection may delete it: a blob younger may belong to an op being
// begun or committed right now.
const gcMinAge = 10 * time.Minute

// leaseKey, in the agents bucket, is held by the core that sweeps: one at
// a time, so that retention is counted once. It is never an agent's key
// ('=' starts only escapes there).
const leaseKey = "=sweep"

type leaseRec struct {
	Until time.Time `json:"until"`
	Core  string    `json:"core"`
}

// Sweep discards partial ops not written to for PartialMaxAge, drops the
// oldest events past EventMaxCount and EventMaxBytes per agent, and
// deletes data that no partial op, state entry or event refers to any
// more. It returns the number of partial ops discarded. Open runs it
// every SweepInterval; when another core is sweeping, it returns 0 at
// once.
func (s *Store) Sweep() (int, error) {
	if err := s.acquire(); err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	defer s.release()
	n, err := s.sweepHeld(context.Background())
	if err != nil {
		return n, fmt.Errorf("sweep: %w", err)
	}
	return n, nil
}

// sweep is Sweep for the background loop.
func (s *Store) sweep(ctx context.Context) (int, error) {
	if err := s.acquire(); err != nil {
		return 0, nil // closing
	}
	defer s.release()
	return s.sweepHeld(ctx)
}

func (s *Store) sweepHeld(ctx context.Context) (int, error) {
	if s.cfg.ReadOnly {
		return 0, nil
	}
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	held, err := s.takeLease(rctx)
	cancel()
	if err != nil || !held {
		return 0, err
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Timeout)
		if err := s.removeRecord(rctx, s.agentsS, s.n.bucket(bucketAgents), leaseKey); err != nil {
			s.cfg.Logger.Warn("sweep lease not released; it expires by itself", "error", err)
		}
		cancel()
	}()
	cutoff := s.cfg.Now().Add(-s.cfg.PartialMaxAge)
	dropped := 0
	for _, d := range s.mem.expire(cutoff) {
		s.counters.addLocal(d.agent, -d.size)
		dropped++
	}
	var stale []partialRec
	sctx, cancel := context.WithTimeout(ctx, 10*s.cfg.Timeout)
	defer cancel()
	err = s.partialRecords(sctx, "", func(rec partialRec) error {
		if rec.Updated.Before(cutoff) {
			stale = append(stale, rec)
		}
		return nil
	})
	if err != nil {
		return dropped, err
	}
	for _, rec := range stale {
		if err := s.dropStale(sctx, rec); err != nil {
			return dropped, err
		}
		dropped++
	}
	if err := s.flush(sctx); err != nil {
		return dropped, err
	}
	agents, err := s.agentRecords(sctx)
	if err != nil {
		return dropped, err
	}
	for _, a := range agents {
		if err := s.retain(sctx, a); err != nil {
			return dropped, fmt.Errorf("agent %q: %w", a.Agent, err)
		}
		if err := s.collect(sctx, a.Agent); err != nil {
			return dropped, fmt.Errorf("agent %q: %w", a.Agent, err)
		}
	}
	return dropped, nil
}

// takeLease takes the sweep lease unless another core holds it.
func (s *Store) takeLease(ctx context.Context) (bool, error) {
	b, err := json.Marshal(leaseRec{Until: time.Now().Add(2*s.cfg.SweepInterval + 10*s.cfg.Timeout), Core: s.cfg.Name})
	if err != nil {
		return false, err
	}
	_, err = s.agents.Create(ctx, leaseKey, b)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return false, fmt.Errorf("sweep lease: %w", err)
	}
	e, err := s.agents.Get(ctx, leaseKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil // released meanwhile: sweep next time
	}
	if err != nil {
		return false, fmt.Errorf("sweep lease: %w", err)
	}
	var l leaseRec
	if json.Unmarshal(e.Value(), &l) == nil && time.Now().Before(l.Until) {
		return false, nil
	}
	// Expired: its core died sweeping.
	if _, err := s.agents.Update(ctx, leaseKey, b, e.Revision()); err != nil {
		return false, nil // taken by another core meanwhile
	}
	return true, nil
}

// dropStale discards an idle partial op. If its op was committed (a core
// died between making it visible and removing the record), its data
// belongs to the op and stays.
func (s *Store) dropStale(ctx context.Context, rec partialRec) error {
	eff, _, err := s.appliedEffect(ctx, rec.Agent, rec.Op)
	if err != nil {
		return err
	}
	if eff.visible {
		return s.finishPartial(ctx, rec.Agent, rec, eff)
	}
	return s.dropPartial(ctx, rec.Agent, rec)
}

// retain drops an agent's oldest events while there are more than
// EventMaxCount, or more bytes than EventMaxBytes, deleting their data.
func (s *Store) retain(ctx context.Context, a agentRec) error {
	filter := agentFilter(s.n.subject(subjEvents), a.Agent)
	count, err := s.count(ctx, s.events, filter)
	if err != nil {
		return err
	}
	n, bytes := int64(count), a.EventBytes
	over := func() bool {
		return n > s.cfg.EventMaxCount || (s.cfg.EventMaxBytes > 0 && bytes > s.cfg.EventMaxBytes)
	}
	if !over() {
		return nil
	}
	var last uint64
	var drop core.AgentStats
	err = s.scan(ctx, s.events, jetstream.ConsumerConfig{FilterSubject: filter, HeadersOnly: true}, func(msg jetstream.Msg) error {
		if !over() {
			return errStop
		}
		m, err := parseMeta(msg.Headers())
		if err != nil {
			return fmt.Errorf("%s: %w", msg.Subject(), err)
		}
		if m.data != "" {
			if err := s.purgeBlob(ctx, m.data); err != nil {
				return err
			}
		}
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		last = md.Sequence.Stream
		n--
		bytes -= m.size
		drop.Events--
		drop.EventBytes -= m.size
		drop.Bytes -= m.size
		drop.Evicted++
		return nil
	})
	if err != nil {
		return err
	}
	if last == 0 {
		return nil
	}
	if err := s.events.Purge(ctx, jetstream.WithPurgeSubject(filter), jetstream.WithPurgeSequence(last+1)); err != nil {
		return fmt.Errorf("drop events up to %d: %w", last, err)
	}
	s.counters.add(a.Agent, drop)
	return nil
}

// collect deletes an agent's blobs that nothing refers to: no partial
// record, and an owner marker whose state entry or event no longer names
// the blob (or no marker at all), once older than gcMinAge.
func (s *Store) collect(ctx context.Context, agent string) error {
	info, err := s.data.Info(ctx, jetstream.WithSubjectFilter(agentFilter(s.n.subject(subjData), agent)))
	if err != nil {
		return fmt.Errorf("data subjects: %w", err)
	}
	if len(info.State.Subjects) == 0 {
		return nil
	}
	live := map[string]bool{}
	if err := s.partialRecords(ctx, agent, func(rec partialRec) error {
		live[s.n.dataSubject(agent, rec.Blob)] = true
		return nil
	}); err != nil {
		return err
	}
	for subject := range info.State.Subjects {
		if live[subject] {
			continue
		}
		last, err := s.data.GetLastMsgForSubject(ctx, subject)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		if time.Since(last.Time) < gcMinAge {
			continue
		}
		owned, err := s.owned(ctx, agent, subject, last.Header.Get(HdrOwner), last.Header.Get(HdrKey), last.Header.Get(HdrSeq))
		if err != nil {
			return err
		}
		if !owned {
			s.cfg.Logger.Debug("deleting data nothing refers to", "subject", subject)
			if err := s.purgeBlob(ctx, subject); err != nil {
				return err
			}
		}
	}
	return nil
}

// owned reports whether the state entry or event a blob's owner marker
// names still refers to it.
func (s *Store) owned(ctx context.Context, agent, subject, owner, key, seq string) (bool, error) {
	switch owner {
	case "state":
		k, err := url.PathUnescape(key)
		if err != nil {
			return false, nil
		}
		cur, _, err := s.getState(ctx, agent, k)
		return err == nil && cur != nil && cur.data == subject, err
	case "event":
		n, err := strconv.ParseUint(seq, 10, 64)
		if err != nil {
			return false, nil
		}
		m, err := s.event(ctx, agent, n)
		if errors.Is(err, core.ErrNotFound) {
			return false, nil
		}
		return err == nil && m.data == subject, err
	}
	return false, nil
}
