package jsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edge-sync/edge-sync/core"
)

// Per-agent counters live in the agents bucket, one JSON record per agent
// that every core adds to. A core counts its own changes in memory and
// adds them to the record every FlushInterval (and before Stats, Agents
// and Close) with a compare-and-set, so that counting costs no write on
// an op's path. A core that dies loses the changes of its last interval:
// the counters are figures to watch, not the data's truth. The applied
// count is not kept there (the record's stays 0); Stats counts the
// applied bucket's entries and the events' markers.

// agentRec is an agent's counters in the agents bucket: the store's
// AgentStats, but for Applied, which is not kept there (it stays 0).
type agentRec struct {
	Agent string `json:"agent"`
	core.AgentStats
}

// add adds d's counts, but the applied count, to the record.
func (r *agentRec) add(d core.AgentStats) {
	d.Applied = 0
	r.AgentStats.Add(d)
}

// counters are this core's changes not yet flushed, and the shared
// records as last read, for quota checks: this core takes an agent to use
// shared + inflight + pending bytes.
type counters struct {
	mu       sync.Mutex
	local    map[string]int64           // agent → bytes reserved by partial ops in this core's memory
	pending  map[string]core.AgentStats // agent → changes not flushed
	inflight map[string]core.AgentStats // agent → changes being flushed
	shared   map[string]agentRec        // agent → record as last read or written
	// written holds the records this core wrote last, with their
	// revisions, so that the next flush of the agent needs no read (a
	// record another core wrote meanwhile fails the compare-and-set, and
	// is read then). Only flush uses it, holding flushMu.
	written map[string]writtenRec
	flushMu sync.Mutex // one flush at a time; held while a record is learnt
}

type writtenRec struct {
	rec agentRec
	rev uint64
}

func (c *counters) init() {
	c.local = map[string]int64{}
	c.pending = map[string]core.AgentStats{}
	c.inflight = map[string]core.AgentStats{}
	c.shared = map[string]agentRec{}
	c.written = map[string]writtenRec{}
}

// addLocal changes agent's reservation for partial ops held in memory:
// it is this core's alone and never flushed, for they die with it.
func (c *counters) addLocal(agent string, d int64) {
	c.mu.Lock()
	if c.local[agent] += d; c.local[agent] == 0 {
		delete(c.local, agent)
	}
	c.mu.Unlock()
}

// add records a change of agent's counters.
func (c *counters) add(agent string, d core.AgentStats) {
	c.mu.Lock()
	p := c.pending[agent]
	p.Add(d)
	c.pending[agent] = p
	c.mu.Unlock()
}

// reserve adds size to agent's reserved bytes unless that takes it past
// quota (bytes stored plus reserved, less credit). known reports whether
// the shared record has been read; the caller reads it first if not.
func (c *counters) tryReserve(agent string, size, credit, quota int64, local bool) (known bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sh, ok := c.shared[agent]
	if !ok {
		return false, nil
	}
	p, f := c.pending[agent], c.inflight[agent]
	used := sh.Bytes + sh.Reserved + f.Bytes + f.Reserved + p.Bytes + p.Reserved + c.local[agent]
	if used+size-credit > quota {
		return true, fmt.Errorf("%w: op of %d bytes with %d of %d bytes in use", core.ErrQuota, size, used, quota)
	}
	if local {
		c.local[agent] += size
	} else {
		p.Reserved += size
		c.pending[agent] = p
	}
	return true, nil
}

// reserve counts size bytes as reserved for agent's new partial op,
// refusing (core.ErrQuota) what takes the agent past quota; credit is the
// size of the version the op replaces. Other cores' changes count once
// they have flushed them and this core has read them.
func (s *Store) reserve(ctx context.Context, agent string, size, credit, quota int64, local bool) error {
	c := &s.counters
	if quota <= 0 {
		if local {
			c.addLocal(agent, size)
		} else {
			c.add(agent, core.AgentStats{Reserved: size})
		}
		return nil
	}
	if known, err := c.tryReserve(agent, size, credit, quota, local); known {
		return err
	}
	// The first quota check of this agent on this core: read its record
	// while no flush runs, so that nothing in flight is counted twice.
	c.flushMu.Lock()
	r, _, err := s.readAgent(ctx, agent)
	if err == nil {
		c.mu.Lock()
		if _, ok := c.shared[agent]; !ok {
			c.shared[agent] = r
		}
		c.mu.Unlock()
	}
	c.flushMu.Unlock()
	if err != nil {
		return err
	}
	_, err = c.tryReserve(agent, size, credit, quota, local)
	return err
}

// readAgent reads agent's shared record; a missing one is zero.
func (s *Store) readAgent(ctx context.Context, agent string) (agentRec, uint64, error) {
	e, err := s.agents.Get(ctx, Token(agent))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return agentRec{Agent: agent}, 0, nil
	}
	if err != nil {
		return agentRec{}, 0, fmt.Errorf("agent %q counters: %w", agent, err)
	}
	var r agentRec
	if err := decodeJSON("agent", e.Value(), &r); err != nil {
		return agentRec{}, 0, err
	}
	return r, e.Revision(), nil
}

// flush adds every pending change to the shared records.
func (s *Store) flush(ctx context.Context) error {
	c := &s.counters
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	c.inflight, c.pending = c.pending, map[string]core.AgentStats{}
	c.mu.Unlock()
	type job struct {
		agent string
		d     core.AgentStats
		known writtenRec
		ok    bool
	}
	var jobs []job
	for agent, d := range c.inflight {
		if d != (core.AgentStats{}) {
			w, ok := c.written[agent]
			jobs = append(jobs, job{agent, d, w, ok})
		}
	}
	if len(c.written) > maxWritten {
		clear(c.written) // a cache, not a record
	}
	// The agents' records are written by flushWorkers at once: with a
	// thousand agents writing, one after the other took most of the
	// interval (docs/jetstream.md, "Bounds").
	var first error
	var mu sync.Mutex // guards first and c.written
	var wg sync.WaitGroup
	next := make(chan job)
	for range min(flushWorkers, len(jobs)) {
		wg.Go(func() {
			for j := range next {
				w, err := s.flushAgent(ctx, j.agent, j.d, j.known, j.ok)
				c.mu.Lock()
				if err == nil {
					c.shared[j.agent] = w.rec
				} else {
					p := c.pending[j.agent] // kept for the next flush
					p.Add(j.d)
					c.pending[j.agent] = p
				}
				delete(c.inflight, j.agent)
				c.mu.Unlock()
				mu.Lock()
				if err == nil {
					c.written[j.agent] = w
				} else {
					delete(c.written, j.agent)
					if first == nil {
						first = err
					}
				}
				mu.Unlock()
			}
		})
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
	return first
}

// flushWorkers is how many agents' records a flush writes at once;
// maxWritten bounds the records remembered with their revisions.
const (
	flushWorkers = 16
	maxWritten   = 100_000
)

// casRetries bounds compare-and-set loops; every failed round means
// another core wrote meanwhile, so running out means something is wrong.
const casRetries = 1000

// flushAgent adds d to agent's shared record with a compare-and-set,
// starting from known (the record this core wrote last) if ok, else from
// a read; it returns the record written and its revision.
func (s *Store) flushAgent(ctx context.Context, agent string, d core.AgentStats, known writtenRec, ok bool) (writtenRec, error) {
	for range casRetries {
		r, rev := known.rec, known.rev
		if !ok {
			var err error
			if r, rev, err = s.readAgent(ctx, agent); err != nil {
				return writtenRec{}, err
			}
		}
		ok = false // a failed compare-and-set reads the record
		r.Agent = agent
		r.add(d)
		b, err := json.Marshal(r)
		if err != nil {
			return writtenRec{}, err
		}
		if rev == 0 {
			rev, err = s.agents.Create(ctx, Token(agent), b)
		} else {
			// A KV Update, written in a group with the ops' writes
			// (group.go): with a thousand agents a flush writes a
			// thousand records.
			var ack *jetstream.PubAck
			ack, err = s.publish(ctx, s.oc(), expectLastSubjSeq(&nats.Msg{Subject: "$KV." + s.n.bucket(bucketAgents) + "." + Token(agent), Data: b}, rev))
			if err == nil {
				rev = ack.Sequence
			}
		}
		if err == nil {
			return writtenRec{r, rev}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !isWrongLastSeq(err) {
			return writtenRec{}, fmt.Errorf("agent %q counters: %w", agent, err)
		}
	}
	return writtenRec{}, fmt.Errorf("agent %q counters: gave up after %d conflicting writes", agent, casRetries)
}

// agentRecords reads every agent's record.
func (s *Store) agentRecords(ctx context.Context) ([]agentRec, error) {
	var out []agentRec
	err := s.scan(ctx, s.agentsS, jetstream.ConsumerConfig{
		FilterSubject: "$KV." + s.n.bucket(bucketAgents) + ".>", DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
	}, func(m jetstream.Msg) error {
		if len(m.Data()) == 0 || strings.HasSuffix(m.Subject(), "."+leaseKey) {
			return nil // a delete marker, or the sweep lease
		}
		var r agentRec
		if err := decodeJSON("agent", m.Data(), &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Agent < out[j].Agent })
	return out, err
}

// Agents lists the agents that have stored anything, sorted.
func (s *Store) Agents() ([]string, error) {
	if err := s.acquire(); err != nil {
		return nil, fmt.Errorf("agents: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.flushIfWriting(ctx); err != nil {
		return nil, fmt.Errorf("agents: %w", err)
	}
	recs, err := s.agentRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("agents: %w", err)
	}
	seen := map[string]bool{}
	names := make([]string, 0, len(recs))
	for _, r := range recs {
		seen[r.Agent] = true
		names = append(names, r.Agent)
	}
	s.counters.mu.Lock()
	for agent := range s.counters.local {
		if !seen[agent] {
			names = append(names, agent)
		}
	}
	s.counters.mu.Unlock()
	sort.Strings(names)
	return names, nil
}

func (s *Store) flushIfWriting(ctx context.Context) error {
	if s.cfg.ReadOnly {
		return nil
	}
	return s.flush(ctx)
}

// Stats returns every agent's counters; Applied counts the entries of the
// applied bucket and the events' applied markers.
func (s *Store) Stats() (core.Stats, error) {
	if err := s.acquire(); err != nil {
		return core.Stats{}, fmt.Errorf("stats: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	if err := s.flushIfWriting(ctx); err != nil {
		return core.Stats{}, fmt.Errorf("stats: %w", err)
	}
	recs, err := s.agentRecords(ctx)
	if err != nil {
		return core.Stats{}, fmt.Errorf("stats: %w", err)
	}
	st := core.Stats{ByAgent: map[string]core.AgentStats{}}
	for _, r := range recs {
		as := r.AgentStats
		n, err := s.count(ctx, s.appliedS, agentFilter("$KV."+s.n.bucket(bucketApplied), r.Agent))
		if err != nil {
			return core.Stats{}, fmt.Errorf("stats: %w", err)
		}
		markers, err := s.count(ctx, s.events, agentFilter(s.n.subject(subjApplied), r.Agent))
		if err != nil {
			return core.Stats{}, fmt.Errorf("stats: %w", err)
		}
		as.Applied = int64(n + markers)
		st.ByAgent[r.Agent] = as
	}
	s.counters.mu.Lock()
	for agent, n := range s.counters.local {
		as := st.ByAgent[agent]
		as.Reserved += n
		st.ByAgent[agent] = as
	}
	s.counters.mu.Unlock()
	for _, as := range st.ByAgent {
		st.Total.Add(as)
	}
	st.Agents = len(st.ByAgent)
	return st, nil
}

// AgentStats returns one agent's counters as this core knows them (the
// shared record plus its own changes not flushed yet), without the
// applied count.
func (s *Store) AgentStats(agent string) (core.AgentStats, error) {
	if err := s.acquire(); err != nil {
		return core.AgentStats{}, fmt.Errorf("agent stats: %w", err)
	}
	defer s.release()
	ctx, cancel := s.ctx()
	defer cancel()
	r, _, err := s.readAgent(ctx, agent)
	if err != nil {
		return core.AgentStats{}, fmt.Errorf("agent stats: %w", err)
	}
	st := r.AgentStats
	s.counters.mu.Lock()
	st.Add(s.counters.pending[agent])
	st.Reserved += s.counters.local[agent]
	s.counters.mu.Unlock()
	return st, nil
}

var _ core.AgentStatser = (*Store)(nil)
