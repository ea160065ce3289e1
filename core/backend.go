package core

import (
	"crypto/sha256"
	"fmt"
	"io"

	edgesync "github.com/edge-sync/edge-sync"
)

// Backend is a core's store as its users see it: the server writes ops
// into it and reads delta bases from it, the admin API and `edge-sync
// core ls/get/tail` read what arrived. Two implementations exist: Store,
// one bbolt file (the default), and core/jsstore, NATS JetStream shared by
// any number of cores. Both keep the promises of docs/core.md: an op is
// acknowledged only once durable, applied exactly once by op ID, and
// either wholly visible or not at all; the errors are this package's
// sentinels (ErrNotFound, ErrQuota, ...).
//
// What only some stores can do is an optional interface: Sweeper,
// PartialReleaser, WholeApplier, WholeOpsApplier, AgentStatser.
type Backend interface {
	// BeginPartial starts or resumes receiving an op and returns how many
	// of its bytes are held; dup reports an op applied before.
	BeginPartial(agent string, hdr PartialHeader) (held int64, dup bool, err error)
	// WritePartial appends data at offset, which must be where the held
	// data ends (ErrOutOfOrder).
	WritePartial(agent string, opID edgesync.OpID, offset int64, data []byte) error
	// PartialSize returns how many bytes of a partial op are held, and
	// false if there is none.
	PartialSize(agent string, opID edgesync.OpID) (int64, bool)
	// CommitPartial verifies a fully received op and makes it visible.
	CommitPartial(agent string, opID edgesync.OpID) (Result, error)
	// DiscardPartial drops a partial op and its data.
	DiscardPartial(agent string, opID edgesync.OpID) error
	// Applied reports whether the op was applied.
	Applied(agent string, opID edgesync.OpID) (bool, error)
	// PutSummary records the latest summary of a key.
	PutSummary(agent string, sum Summary) error

	// Current returns the current version of a key and its data.
	Current(agent, key string) (Version, *Object, error)
	// Keys lists up to limit current versions under prefix, in key order.
	Keys(agent, prefix string, limit int) ([]Version, error)
	// Events lists up to limit events from sequence number fromSeq on.
	Events(agent string, fromSeq uint64, limit int) ([]Event, error)
	// EventData returns an event and its payload.
	EventData(agent string, seq uint64) (Event, *Object, error)
	// Summaries lists up to limit summaries under prefix.
	Summaries(agent, prefix string, limit int) ([]Summary, error)
	// Agents lists the agents that have stored anything, sorted.
	Agents() ([]string, error)
	// Stats returns the counters of every agent.
	Stats() (Stats, error)

	// Close releases the store; its owner calls it once nothing uses it.
	Close() error
}

// Sweeper is a store that discards idle partial ops and applies its
// retention bounds when asked (Store.Sweep).
type Sweeper interface {
	Sweep() (int, error)
}

// PartialReleaser is a store that ends the quota reservation of a partial
// op when the last stream receiving it ends without a commit, keeping only
// the bytes it holds reserved (Store.ReleasePartial). A store without it
// keeps the declared size reserved until the op commits or is swept.
type PartialReleaser interface {
	ReleasePartial(agent string, opID edgesync.OpID) error
}

// WholeApplier is a store that applies a whole small op in one durable
// write (Store.ApplyWhole): the server receives an op of one chunk, which
// the agent sends at once, and hands it over whole instead of through
// BeginPartial, WritePartial and CommitPartial. A partial op of the same
// ID, left by an earlier attempt, is dropped.
type WholeApplier interface {
	ApplyWhole(agent string, hdr PartialHeader, data []byte) (Result, error)
}

// WholeOpsApplier is a store that applies several whole ops of one agent
// in one call (Store.ApplyWholeOps): the ops of one stream of several
// (docs/wire.md, "Several ops per stream"), applied together rather than
// one after another, each waiting for its own durable write. Each op gets
// its own result, in the order of ops: a duplicate is a Result with
// Duplicate set, a refused op an error that names it, and the others are
// applied all the same. Ops of the same key are applied in their order.
// A partial op of the same ID as one of them is dropped, as ApplyWhole
// drops it.
type WholeOpsApplier interface {
	ApplyWholeOps(agent string, ops []WholeOp) []WholeResult
}

// WholeOp is an op held whole in memory: its header and its plain data.
type WholeOp struct {
	Header PartialHeader
	Data   []byte
}

// WholeResult is what became of one WholeOp: its Result, or the error
// that refused or failed it.
type WholeResult struct {
	Result Result
	Err    error
}

// AgentStatser is a store that reads one agent's counters more cheaply
// than Stats reads everyone's.
type AgentStatser interface {
	AgentStats(agent string) (AgentStats, error)
}

var (
	_ Backend         = (*Store)(nil)
	_ Sweeper         = (*Store)(nil)
	_ PartialReleaser = (*Store)(nil)
	_ WholeApplier    = (*Store)(nil)
	_ WholeOpsApplier = (*Store)(nil)
)

// agentUsage returns the bytes an agent holds at the core (stored plus
// reserved by partial ops), for the quota left that Welcome announces.
func agentUsage(b Backend, agent string) (int64, error) {
	if as, ok := b.(AgentStatser); ok {
		st, err := as.AgentStats(agent)
		return st.Bytes + st.Reserved, err
	}
	st, err := b.Stats()
	if err != nil {
		return 0, err
	}
	u := st.ByAgent[agent]
	return u.Bytes + u.Reserved, nil
}

// NewObject returns an Object of size bytes whose SHA-256 is sum, reading
// its data from src; it is how a Backend other than Store hands out data.
// Reads are verified against the SHA-256 as they are for Store's objects.
// src.ReadAt must fill its buffer unless it returns an error.
func NewObject(size int64, sum [32]byte, src io.ReaderAt) *Object {
	return &Object{src: src, size: size, want: sum, h: sha256.New()}
}

// readSrc reads an object of another Backend: want is p cut to the
// object's end.
func (o *Object) readSrc(p, want []byte, off int64) (int, error) {
	n, err := o.src.ReadAt(want, off)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("read object: %w", err)
	}
	if n < len(want) {
		return n, fmt.Errorf("read object: %w: %d of %d bytes at offset %d", io.ErrUnexpectedEOF, n, len(want), off)
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// DefaultConfig returns c with the defaults documented on Config's fields
// filled in, for other Backends that take the same limits.
func DefaultConfig(c Config) Config { return c.withDefaults() }

// CheckOp checks an agent name and an op header as Store does, against a
// largest op of maxSize bytes: ErrInvalid or ErrTooLarge, naming what is
// wrong.
func CheckOp(agent string, hdr PartialHeader, maxSize int64) error {
	if err := checkAgent(agent); err != nil {
		return err
	}
	// checkHeader reads only the size limit of its store.
	return (&Store{cfg: Config{MaxObjectSize: maxSize}}).checkHeader(hdr)
}

// CheckName checks an agent name and a key (of a summary or a lookup)
// as Store does.
func CheckName(agent, key string) error {
	if err := checkAgent(agent); err != nil {
		return err
	}
	return checkKey(key, edgesync.EventOp)
}
