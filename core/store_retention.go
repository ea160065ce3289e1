package core

import (
	"bytes"
	"errors"
	"fmt"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// appliedPrunePerTx bounds how many applied-index entries one commit
// removes, so that a lowered bound is enforced gradually, not in one huge
// transaction.
const appliedPrunePerTx = 64

// eventPrunePerTx bounds how many events one commit drops.
const eventPrunePerTx = 1024

// pruneEvents drops the oldest events while the agent is over
// EventMaxCount or EventMaxBytes.
func (s *Store) pruneEvents(a *agentBucket) error {
	c := a.events.Cursor()
	for i := 0; i < eventPrunePerTx; i++ {
		over := a.stat(statEvents) > s.cfg.EventMaxCount ||
			(s.cfg.EventMaxBytes > 0 && a.stat(statEventBytes) > s.cfg.EventMaxBytes)
		if !over {
			return nil
		}
		k, v := c.First()
		if k == nil {
			return nil
		}
		ev, err := decodeEvent(beU64(k), v)
		if err != nil {
			return err
		}
		if err := a.events.Delete(bytes.Clone(k)); err != nil {
			return err
		}
		if err := s.freeBlob(a, ev.blob, ev.Size); err != nil {
			return err
		}
		for _, st := range []struct {
			name []byte
			d    int64
		}{{statBytes, -ev.Size}, {statEvents, -1}, {statEventBytes, -ev.Size}, {statEvicted, 1}} {
			if err := a.addStat(st.name, st.d); err != nil {
				return err
			}
		}
	}
	return nil
}

// pruneApplied forgets up to max of the oldest applied op IDs while the
// index is over AppliedMaxCount or its oldest entry is older than
// AppliedMaxAge.
func (s *Store) pruneApplied(a *agentBucket, now time.Time, max int) error {
	cutoff := now.Add(-s.cfg.AppliedMaxAge)
	c := a.appliedq.Cursor()
	for i := 0; i < max; i++ {
		k, id := c.First()
		if k == nil {
			return nil
		}
		v := a.applied.Get(id)
		if v != nil && a.stat(statApplied) <= s.cfg.AppliedMaxCount {
			r, err := decodeApplied(v)
			if err != nil {
				return fmt.Errorf("applied index: %w", err)
			}
			if !r.at.Before(cutoff) {
				return nil
			}
		}
		if v != nil {
			if err := a.applied.Delete(bytes.Clone(id)); err != nil {
				return err
			}
			if err := a.addStat(statApplied, -1); err != nil {
				return err
			}
		}
		if err := a.appliedq.Delete(bytes.Clone(k)); err != nil {
			return err
		}
	}
	return nil
}

// recover runs at Open: it discards the staging data of one-shot applies
// that a crash interrupted, ends the reservations of partial ops (no
// receive survives a restart), finishes deleting garbage, and applies the
// retention bounds.
func (s *Store) recover() error {
	// What a crash left in the journal goes to its agents first, so that
	// retention sees it. A fold that cannot be written for want of room
	// leaves it there, where reads find it (viewUnwritten), until the
	// store's goroutine can fold it.
	if err := passStuck(s.fold()); err != nil && !noRoom(err) {
		return err
	}
	agents, err := s.agentNames()
	if err != nil {
		return err
	}
	for _, agent := range agents {
		if _, err := s.sweepAgent(agent, true); err != nil {
			return err
		}
	}
	return nil
}

// Sweep discards partial ops not written to for PartialMaxAge and applies
// the applied-index retention bounds. It returns the number of partial ops
// discarded. The server calls it periodically.
func (s *Store) Sweep() (int, error) {
	if err := s.acquire(); err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	defer s.release()
	if err := s.foldForRead(); err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	agents, err := s.agentNames()
	if err != nil {
		return 0, fmt.Errorf("sweep: %w", err)
	}
	total := 0
	for _, agent := range agents {
		n, err := s.sweepAgent(agent, false)
		total += n
		if err != nil {
			return total, fmt.Errorf("sweep: %w", err)
		}
	}
	return total, nil
}

func (s *Store) sweepAgent(agent string, atOpen bool) (int, error) {
	now := s.cfg.Now()
	cutoff := now.Add(-s.cfg.PartialMaxAge)
	dropped := 0
	err := s.update(func(tx *bolt.Tx) error {
		dropped = 0
		a, err := agentRO(tx, agent)
		if err != nil {
			return err
		}
		var stale, reserved []partialRec
		err = a.partials.ForEach(func(k, v []byte) error {
			p, err := decodePartial(v)
			if err != nil {
				return fmt.Errorf("partial %x: %w", k, err)
			}
			switch {
			case (atOpen && p.ephemeral) || p.updated.Before(cutoff):
				stale = append(stale, p)
			case atOpen && p.reserved != p.held:
				reserved = append(reserved, p)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, p := range stale {
			if err := s.dropPartial(a, p); err != nil {
				return err
			}
		}
		for _, p := range reserved {
			if err := releaseReservation(a, &p); err != nil {
				return err
			}
		}
		dropped = len(stale)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("agent %q: %w", agent, err)
	}
	// Retention: loop in bounded transactions until the applied index is
	// within bounds; the round bound only guards against a bug.
	for round := 0; round < 1<<16; round++ {
		before := int64(0)
		err := s.update(func(tx *bolt.Tx) error {
			a, err := agentRO(tx, agent)
			if err != nil {
				return err
			}
			before = a.stat(statApplied)
			if err := s.pruneEvents(a); err != nil {
				return err
			}
			if err := s.pruneApplied(a, now, 4096); err != nil {
				return err
			}
			before -= a.stat(statApplied)
			return nil
		})
		if err != nil {
			return dropped, fmt.Errorf("agent %q: %w", agent, err)
		}
		if before < 4096 {
			break
		}
	}
	return dropped, s.collectGarbage(agent)
}

// noRoom reports whether err says that the disk (or the file's cap) has
// no room for a write.
func noRoom(err error) bool {
	return errors.Is(err, berrors.ErrMaxSizeReached) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func (s *Store) agentNames() ([]string, error) {
	var names []string
	err := s.viewTx(func(tx *bolt.Tx) error {
		return tx.Bucket(bktAgents).ForEach(func(k, v []byte) error {
			if v != nil {
				return fmt.Errorf("%w: value %q where an agent bucket belongs", ErrCorrupt, k)
			}
			names = append(names, string(k))
			return nil
		})
	})
	return names, err
}
