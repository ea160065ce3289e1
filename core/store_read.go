package core

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"

	edgesync "github.com/edge-sync/edge-sync"
)

// view runs fn in a read transaction on agent's buckets.
func (s *Store) view(agent string, fn func(a *agentBucket) error) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	return s.viewTx(func(tx *bolt.Tx) error {
		a, err := agentRO(tx, agent)
		if err != nil {
			return err
		}
		return fn(a)
	})
}

// viewFolded is view for a read that needs the agent's journal entries
// in its buckets: it folds them first (store_journal.go).
func (s *Store) viewFolded(agent string, fn func(a *agentBucket) error) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.release()
	if err := s.foldAgentForRead(agent); err != nil {
		if _, stuck := errors.AsType[*foldAgentError](err); stuck {
			return err
		}
		// The fold could not be written (a full disk): read what it
		// would have written.
		return s.viewUnwritten(err, func(tx *bolt.Tx) error {
			a, err := agentRO(tx, agent)
			if err != nil {
				return err
			}
			if err := s.foldAgent(tx, a); err != nil {
				return err
			}
			return fn(a)
		})
	}
	return s.viewTx(func(tx *bolt.Tx) error {
		a, err := agentRO(tx, agent)
		if err != nil {
			return err
		}
		return fn(a)
	})
}

// Current returns the current version of key and a reader of its data,
// for delta decoding and for `edge-sync core get`.
func (s *Store) Current(agent, key string) (Version, *Object, error) {
	var v Version
	err := s.view(agent, func(a *agentBucket) error {
		b := a.keys.Get([]byte(key))
		if b == nil {
			return fmt.Errorf("key %q: %w", key, ErrNotFound)
		}
		var err error
		v, err = decodeVersion(key, b)
		return err
	})
	if err != nil {
		return Version{}, nil, fmt.Errorf("current: %w", err)
	}
	return v, newObject(s, agent, v.blob, v.inline, v.Size, v.Hash), nil
}

// Get is Current under the name the CLI uses.
func (s *Store) Get(agent, key string) (Version, *Object, error) { return s.Current(agent, key) }

// Keys lists up to limit current versions whose key starts with prefix, in
// key order; limit <= 0 means no limit.
func (s *Store) Keys(agent, prefix string, limit int) ([]Version, error) {
	return list(s.view, "keys", agent, func(a *agentBucket) *bolt.Bucket { return a.keys }, []byte(prefix), []byte(prefix), limit,
		func(k, v []byte) (Version, error) { return decodeVersion(string(k), v) })
}

// Agents lists the agents that have stored anything, sorted.
func (s *Store) Agents() ([]string, error) {
	if err := s.acquire(); err != nil {
		return nil, fmt.Errorf("agents: %w", err)
	}
	defer s.release()
	names, err := s.agentNames()
	if err != nil {
		return nil, fmt.Errorf("agents: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

// Events returns up to limit events with sequence numbers from fromSeq on,
// in arrival order; limit <= 0 means no limit. Sequence numbers start at 1
// and are never reused; retention drops the oldest.
func (s *Store) Events(agent string, fromSeq uint64, limit int) ([]Event, error) {
	return list(s.viewFolded, "events", agent, func(a *agentBucket) *bolt.Bucket { return a.events }, u64b(fromSeq), nil, limit,
		func(k, v []byte) (Event, error) { return decodeEvent(beU64(k), v) })
}

// EventData returns a reader of event seq's payload.
func (s *Store) EventData(agent string, seq uint64) (Event, *Object, error) {
	var ev Event
	err := s.viewFolded(agent, func(a *agentBucket) error {
		v := a.events.Get(u64b(seq))
		if v == nil {
			return fmt.Errorf("event %d: %w", seq, ErrNotFound)
		}
		var err error
		ev, err = decodeEvent(seq, v)
		return err
	})
	if err != nil {
		return Event{}, nil, fmt.Errorf("event data: %w", err)
	}
	return ev, newObject(s, agent, ev.blob, ev.inline, ev.Size, ev.Hash), nil
}

// Applied reports whether opID is in the agent's applied-op index.
func (s *Store) Applied(agent string, opID edgesync.OpID) (bool, error) {
	found := false
	err := s.viewFolded(agent, func(a *agentBucket) error {
		found = a.applied.Get(opID[:]) != nil
		return nil
	})
	if err != nil && !isNotFound(err) {
		return false, fmt.Errorf("applied: %w", err)
	}
	return found, nil
}

// PartialInfo describes a partial op held for resume.
type PartialInfo struct {
	Header PartialHeader
	Held   int64
	// Reserved is what the partial counts against the agent's quota: its
	// declared size while it is received, what it holds once released.
	Reserved int64
}

// Partials lists an agent's partial ops, for the server to offer resume.
func (s *Store) Partials(agent string) ([]PartialInfo, error) {
	var out []PartialInfo
	err := s.view(agent, func(a *agentBucket) error {
		return a.partials.ForEach(func(_, v []byte) error {
			p, err := decodePartial(v)
			if err != nil {
				return err
			}
			if !p.ephemeral {
				out = append(out, PartialInfo{Header: p.hdr, Held: p.held, Reserved: p.reserved})
			}
			return nil
		})
	})
	if err != nil && !isNotFound(err) {
		return nil, fmt.Errorf("partials: %w", err)
	}
	return out, nil
}

// AgentStats are one agent's counters.
type AgentStats struct {
	Keys       int64 `json:"keys"`        // keys with a current version
	Events     int64 `json:"events"`      // events kept
	Bytes      int64 `json:"bytes"`       // stored object and event bytes
	EventBytes int64 `json:"event_bytes"` // event payload bytes kept
	Reserved   int64 `json:"reserved"`    // bytes partial ops count against the quota: declared while received, held once released
	Applied    int64 `json:"applied"`     // entries in the applied-op index
	Dedups     int64 `json:"dedups"`      // duplicate ops acknowledged again, not applied
	Summaries  int64 `json:"summaries"`   // summaries kept
	Evicted    int64 `json:"evicted"`     // events dropped by retention
}

// Add adds y's counts to x's.
func (x *AgentStats) Add(y AgentStats) {
	x.Keys += y.Keys
	x.Events += y.Events
	x.Bytes += y.Bytes
	x.EventBytes += y.EventBytes
	x.Reserved += y.Reserved
	x.Applied += y.Applied
	x.Dedups += y.Dedups
	x.Summaries += y.Summaries
	x.Evicted += y.Evicted
}

func readStats(a *agentBucket) AgentStats {
	return AgentStats{
		Keys: a.stat(statKeys), Events: a.stat(statEvents), Bytes: a.stat(statBytes), EventBytes: a.stat(statEventBytes),
		Reserved: a.stat(statReserved), Applied: a.stat(statApplied), Dedups: a.stat(statDedups),
		Summaries: a.stat(statSummaries), Evicted: a.stat(statEvicted),
	}
}

// Stats are the store's counters: totals and per agent.
type Stats struct {
	Agents  int                   `json:"agents"`
	Total   AgentStats            `json:"total"`
	ByAgent map[string]AgentStats `json:"by_agent"`
}

// Stats returns the store's counters.
func (s *Store) Stats() (Stats, error) {
	if err := s.acquire(); err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	defer s.release()
	var st Stats
	read := func(tx *bolt.Tx, stuck map[string]AgentStats) error {
		st = Stats{ByAgent: map[string]AgentStats{}}
		return tx.Bucket(bktAgents).ForEach(func(k, _ []byte) error {
			a, err := agentRO(tx, string(k))
			if err != nil {
				return err
			}
			as := readStats(a)
			as.Add(stuck[string(k)]) // what the fold left in the journal (store_journal.go)
			st.ByAgent[string(k)] = as
			st.Total.Add(as)
			st.Agents++
			return nil
		})
	}
	var err error
	if ferr := s.foldForRead(); ferr != nil {
		// The fold could not be written (a full disk): the journal's
		// entries are counted beside the buckets, as the fold adds them
		// before retention. With no write transaction meanwhile
		// (txMu), the index is what the read sees.
		s.jnl.txMu.Lock()
		err = s.viewTx(func(tx *bolt.Tx) error { return read(tx, s.jnl.countsLocked(true)) })
		s.jnl.txMu.Unlock()
	} else {
		stuck := s.jnl.stuckCounts()
		err = s.viewTx(func(tx *bolt.Tx) error { return read(tx, stuck) })
	}
	if err != nil {
		return Stats{}, fmt.Errorf("stats: %w", err)
	}
	return st, nil
}

// PutSummary records the latest summary of a key. A summary older than
// the key's current summary is ignored; one whose data (or newer data) is
// already stored is kept marked Superseded.
func (s *Store) PutSummary(agent string, sum Summary) error {
	if err := checkAgent(agent); err != nil {
		return fmt.Errorf("put summary: %w", err)
	}
	if err := checkKey(sum.Key, edgesync.EventOp); err != nil {
		return fmt.Errorf("put summary: %w", err)
	}
	if len(sum.Bytes) > s.cfg.MaxSummaryBytes {
		return fmt.Errorf("put summary: %w: %d summary bytes, limit %d", ErrTooLarge, len(sum.Bytes), s.cfg.MaxSummaryBytes)
	}
	if sum.OpID.IsZero() {
		return fmt.Errorf("put summary: %w: zero op id", ErrInvalid)
	}
	if err := s.acquire(); err != nil {
		return fmt.Errorf("put summary: %w", err)
	}
	defer s.release()
	queued := false
	err := s.update(func(tx *bolt.Tx) error {
		a, err := s.agentW(tx, agent)
		if err != nil {
			return err
		}
		queued = a.queued // by the fold
		old := a.summ.Get([]byte(sum.Key))
		if old != nil {
			prev, err := decodeSummary(sum.Key, old)
			if err != nil {
				return err
			}
			if prev.OpID.Compare(sum.OpID) > 0 {
				return nil
			}
		}
		sum.Superseded = a.applied.Get(sum.OpID[:]) != nil
		if v := a.keys.Get([]byte(sum.Key)); v != nil {
			cur, err := decodeVersion(sum.Key, v)
			if err != nil {
				return err
			}
			if cur.OpID.Compare(sum.OpID) >= 0 {
				sum.Superseded = true
			}
		}
		if sum.Time.IsZero() {
			sum.Time = s.cfg.Now()
		}
		if err := a.summ.Put([]byte(sum.Key), sum.encode()); err != nil {
			return err
		}
		if old == nil {
			return a.addStat(statSummaries, 1)
		}
		return nil
	})
	if err == nil && queued {
		err = s.collectGarbage(agent)
	}
	if err != nil {
		return fmt.Errorf("put summary: %w", err)
	}
	return nil
}

// supersedeSummary marks key's summary superseded once data of the same or
// a newer op is stored.
func (s *Store) supersedeSummary(a *agentBucket, key string, opID edgesync.OpID) error {
	v := a.summ.Get([]byte(key))
	if v == nil {
		return nil
	}
	sum, err := decodeSummary(key, v)
	if err != nil {
		return err
	}
	if sum.Superseded || sum.OpID.Compare(opID) > 0 {
		return nil
	}
	sum.Superseded = true
	return a.summ.Put([]byte(key), sum.encode())
}

// Summary returns the latest summary received for key.
func (s *Store) Summary(agent, key string) (Summary, error) {
	var sum Summary
	err := s.viewFolded(agent, func(a *agentBucket) error {
		v := a.summ.Get([]byte(key))
		if v == nil {
			return fmt.Errorf("summary %q: %w", key, ErrNotFound)
		}
		var err error
		sum, err = decodeSummary(key, v)
		return err
	})
	if err != nil {
		return Summary{}, fmt.Errorf("summary: %w", err)
	}
	return sum, nil
}

// Summaries lists up to limit summaries whose key starts with prefix.
func (s *Store) Summaries(agent, prefix string, limit int) ([]Summary, error) {
	return list(s.viewFolded, "summaries", agent, func(a *agentBucket) *bolt.Bucket { return a.summ }, []byte(prefix), []byte(prefix), limit,
		func(k, v []byte) (Summary, error) { return decodeSummary(string(k), v) })
}

// list decodes, in key order, up to limit (<= 0: all) of the entries of
// the agent's bucket b from the key from on that start with prefix (nil:
// to the end): Keys, Events and Summaries. op names the read in errors;
// view is Store.view, or Store.viewFolded for a read that needs the
// agent's journal entries (store_journal.go).
func list[T any](view func(string, func(*agentBucket) error) error, op, agent string, b func(*agentBucket) *bolt.Bucket, from, prefix []byte, limit int, decode func(k, v []byte) (T, error)) ([]T, error) {
	var out []T
	err := view(agent, func(a *agentBucket) error {
		c := b(a).Cursor()
		for k, v := c.Seek(from); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if limit > 0 && len(out) == limit {
				break
			}
			x, err := decode(k, v)
			if err != nil {
				return err
			}
			out = append(out, x)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
