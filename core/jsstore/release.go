package jsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/core"
)

var _ core.PartialReleaser = (*Store)(nil)

// ReleasePartial ends the reservation of a partial op whose receive has
// ended without a commit (the server calls it when the last stream
// receiving the op on this core ends): from now on it counts only the
// bytes it holds against the agent's quota, as on the bbolt store
// (core.Store.ReleasePartial). The partial and its bytes stay for a
// resume, on any core; BeginPartial reserves its declared size again. A
// partial that is not there gives core.ErrNotFound.
//
// A partial in JetStream says so in its record (`released`), written with
// a compare-and-set: a core writing the op meanwhile fails its own
// compare-and-set and the agent sends again from what is held.
func (s *Store) ReleasePartial(agent string, opID edgesync.OpID) error {
	if err := s.acquire(); err != nil {
		return fmt.Errorf("release partial: %w", err)
	}
	defer s.release()
	if d, ok := s.mem.release(agent, opID); ok {
		if d != 0 {
			s.counters.addLocal(agent, d)
		}
		return nil
	}
	ctx, cancel := s.ctx()
	defer cancel()
	for range casRetries {
		rec, rev, err := s.getPartial(ctx, agent, opID)
		if err != nil {
			return fmt.Errorf("release partial %s: %w", opID, err)
		}
		if rec.Released {
			return nil
		}
		before := rec.reserved()
		rec.Released = true
		err = s.putPartial(ctx, agent, rec, rev)
		if errors.Is(err, errConflict) {
			continue // written meanwhile: look again
		}
		if err != nil {
			return fmt.Errorf("release partial %s: %w", opID, err)
		}
		s.counters.add(agent, core.AgentStats{Reserved: rec.reserved() - before})
		return nil
	}
	return fmt.Errorf("release partial %s: %w", opID, errConflict)
}

// reserveAgain makes a released partial in JetStream, received again,
// reserve its declared size (core.ErrQuota if that passes the quota);
// errConflict when the record changed since revision rev.
func (s *Store) reserveAgain(ctx context.Context, agent string, rec partialRec, rev uint64) error {
	more := rec.Size - rec.reserved()
	if err := s.reserveSize(ctx, agent, rec.header(), more, false); err != nil {
		return err
	}
	rec.Released = false
	if err := s.putPartial(ctx, agent, rec, rev); err != nil {
		s.counters.add(agent, core.AgentStats{Reserved: -more})
		return err
	}
	return nil
}

// reserveAgainMem does what reserveAgain does for a partial held in this
// core's memory.
func (s *Store) reserveAgainMem(ctx context.Context, agent string, hdr core.PartialHeader) error {
	more := s.mem.unreserved(agent, hdr.OpID)
	if more <= 0 {
		return nil
	}
	if err := s.reserveSize(ctx, agent, hdr, more, true); err != nil {
		return err
	}
	if !s.mem.reserveMore(agent, hdr.OpID, more) {
		s.counters.addLocal(agent, -more) // dropped meanwhile
	}
	return nil
}

// putPartial writes a partial record over revision rev: errConflict when
// another write came first.
func (s *Store) putPartial(ctx context.Context, agent string, rec partialRec, rev uint64) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	s.records.forget(agent, rec.Op)
	rev, err = s.partials.Update(ctx, agentKey(agent, rec.Op.String()), b, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return errConflict
	}
	if err != nil {
		return fmt.Errorf("partial record: %w", s.kvFull(bucketPartials, err))
	}
	s.records.put(agent, rec, rev)
	return nil
}
