package core

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// What the core knows of each agent since it started: whether it is
// connected, when it was last heard from, and the ops and bytes received
// from it. The status page and /metrics read it (Server.Agents).

// MaxTrackedAgents bounds the agents the core keeps figures of, and so
// the label values of its per-agent metrics. Only agents that passed the
// handshake (a certificate of the core's CA, and a name on the agent list
// when there is one) are counted; past the bound, the disconnected agent
// heard from longest ago is forgotten.
const MaxTrackedAgents = 4096

// AgentFigures are the core's figures of one agent since the core
// started.
type AgentFigures struct {
	Agent string `json:"agent"`
	// Connections is the number of live connections (one, normally).
	Connections int `json:"connections"`
	// LastSeen is when the agent was last heard from: a connection, an op
	// stream or a link-monitor ping.
	LastSeen time.Time `json:"last_seen"`
	// Ops counts the agent's ops received in full and acknowledged
	// (stored, or known already and acknowledged again); Bytes the plain
	// payload bytes of those stored.
	Ops   int64 `json:"ops_received"`
	Bytes int64 `json:"bytes_received"`
	// LastOp is when the last of them was acknowledged; zero before the
	// first. The status page's lag is the time since.
	LastOp time.Time `json:"last_op,omitzero"`
}

// agentFigures are one agent's counters; the connection's goroutines
// write them.
type agentFigures struct {
	conns    atomic.Int64
	lastSeen atomic.Int64 // Unix nanoseconds
	ops      atomic.Int64
	bytes    atomic.Int64
	lastOp   atomic.Int64 // Unix nanoseconds; 0 before the first op
}

// seen records that the agent was heard from now.
func (f *agentFigures) seen() { f.lastSeen.Store(time.Now().UnixNano()) }

// received counts ops acknowledged after commit; size is the plain
// bytes of those stored now (duplicates count none).
func (f *agentFigures) received(ops, size int64) {
	now := time.Now().UnixNano()
	f.ops.Add(ops)
	f.bytes.Add(size)
	f.lastOp.Store(now)
	f.lastSeen.Store(now)
}

// agentTable holds the figures of at most MaxTrackedAgents agents.
type agentTable struct {
	mu sync.Mutex
	m  map[string]*agentFigures
}

// connect returns the figures of agent, counting a new live connection;
// the caller calls disconnect when it ends.
func (t *agentTable) connect(agent string) *agentFigures {
	t.mu.Lock()
	defer t.mu.Unlock()
	f := t.m[agent]
	if f == nil {
		if t.m == nil {
			t.m = map[string]*agentFigures{}
		}
		if len(t.m) >= MaxTrackedAgents {
			t.forgetOldestLocked()
		}
		f = &agentFigures{}
		t.m[agent] = f
	}
	f.conns.Add(1)
	f.seen()
	return f
}

func (t *agentTable) disconnect(f *agentFigures) {
	f.conns.Add(-1)
	f.seen()
}

// forgetOldestLocked drops the disconnected agent heard from longest ago;
// when every agent is connected, none is dropped.
func (t *agentTable) forgetOldestLocked() {
	var oldest string
	var at int64
	for name, f := range t.m {
		if f.conns.Load() > 0 {
			continue
		}
		if s := f.lastSeen.Load(); oldest == "" || s < at {
			oldest, at = name, s
		}
	}
	if oldest != "" {
		delete(t.m, oldest)
	}
}

// Agents returns the figures of every agent the core has heard from since
// it started (at most MaxTrackedAgents), by name.
func (s *Server) Agents() []AgentFigures {
	s.agents.mu.Lock()
	out := make([]AgentFigures, 0, len(s.agents.m))
	for name, f := range s.agents.m {
		a := AgentFigures{Agent: name, Connections: int(f.conns.Load()), LastSeen: unixNano(f.lastSeen.Load()),
			Ops: f.ops.Load(), Bytes: f.bytes.Load(), LastOp: unixNano(f.lastOp.Load())}
		out = append(out, a)
	}
	s.agents.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Agent < out[j].Agent })
	return out
}

// unixNano is the time of n Unix nanoseconds; zero for 0.
func unixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
