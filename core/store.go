package core

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/internal/boltfile"
	"github.com/edge-sync/edge-sync/internal/groupcommit"
)

// Errors returned by the store; test with errors.Is. The server maps them
// to wire reason codes.
var (
	// ErrNotFound means the agent, key, event, summary or partial op does not exist.
	ErrNotFound = errors.New("not found")
	// ErrHashMismatch means the assembled data does not hash to the declared SHA-256.
	ErrHashMismatch = errors.New("hash mismatch")
	// ErrBaseMismatch means a delta's base is not the core's current version of the key.
	ErrBaseMismatch = errors.New("base mismatch")
	// ErrQuota means the op would take the agent past its byte quota.
	ErrQuota = errors.New("quota exceeded")
	// ErrTooLarge means an op, write, key or summary is over a configured limit.
	ErrTooLarge = errors.New("too large")
	// ErrOutOfOrder means a partial write did not start where the held data ends.
	ErrOutOfOrder = errors.New("write out of order")
	// ErrIncomplete means a partial op was committed before all its bytes arrived.
	ErrIncomplete = errors.New("incomplete")
	// ErrInvalid means an argument (agent name, key, header) is malformed.
	ErrInvalid = errors.New("invalid argument")
	// ErrCorrupt means the database file is damaged or not an edge-sync core store.
	ErrCorrupt = errors.New("corrupt store")
	// ErrVersion means the file was written by a newer on-disk format.
	ErrVersion = errors.New("unsupported store format version")
	// ErrClosed means the store has been closed.
	ErrClosed = errors.New("store closed")
)

// FormatVersion is the on-disk format this code writes and reads. Format
// 2 adds the data of a small op to its version or event record
// (inlineDataMax); format 3 the journal of small events not yet folded
// into their agents' buckets (store_journal.go), which an older
// edge-sync would not read. A file of format 1 or 2 is read as it is: Open
// adds the empty journal and raises its marker to 3.
const FormatVersion = 3

const storeMagic = "edge-sync core store"

// Limits on names.
const (
	MaxAgentNameLen = 255
	MaxKeyLen       = 4096
)

// Config holds the store's limits and retention bounds. Zero fields take
// the defaults documented on each field.
type Config struct {
	// Quota is the per-agent byte quota over stored and in-progress data;
	// 0 means unlimited.
	Quota int64
	// AgentQuota, if set, gives each agent its own quota in place of Quota
	// (0 = unlimited); it is asked on every op, so it may change at runtime.
	AgentQuota func(agent string) int64
	// MaxObjectSize is the largest op accepted; default the config file's
	// limits.max_op_bytes (config.DefaultCore, 1 GiB).
	MaxObjectSize int64
	// ChunkSize is the largest value written to bbolt for object data;
	// default 256 KiB.
	ChunkSize int
	// InlineMax is the largest op that Apply writes in a single transaction,
	// holding it in memory; larger ones go through a staged partial op.
	// Default 4 MiB.
	InlineMax int64
	// MaxSummaryBytes bounds a producer summary; default 64 KiB.
	MaxSummaryBytes int
	// EventMaxCount bounds the events kept per agent (oldest dropped first);
	// default the config file's store.event_retention (1,000,000).
	EventMaxCount int64
	// EventMaxBytes bounds the event payload bytes kept per agent; default
	// 0 means no byte bound.
	EventMaxBytes int64
	// AppliedMaxAge is how long an applied op ID is remembered for
	// de-duplication; default the config file's store.dedup_retention
	// (30 days).
	AppliedMaxAge time.Duration
	// AppliedMaxCount bounds the applied-op index per agent; default the
	// config file's store.dedup_max_entries (1,000,000).
	AppliedMaxCount int64
	// PartialMaxAge discards partial ops not written to for this long;
	// default the config file's store.partial_max_age (7 days).
	PartialMaxAge time.Duration
	// OpenTimeout is how long Open waits for another process's file lock;
	// default 5 s.
	OpenTimeout time.Duration
	// VerifyOnOpen runs bbolt's full consistency check at Open (reads every
	// page; slow on big stores).
	VerifyOnOpen bool
	// Now returns the current time; default time.Now. For tests.
	Now func() time.Time

	// foldOff keeps the store's goroutine from folding the journal
	// (tests: a crash between journal and fold).
	foldOff bool
	// maxFileSize caps the file's size (bbolt's MaxSize; 0: none), as a
	// full disk does (tests).
	maxFileSize int
}

func (c Config) withDefaults() Config {
	// What a config file sets has its defaults there, once
	// (config.DefaultCore); the rest are the store's own.
	file := StoreConfig(config.DefaultCore())
	if c.MaxObjectSize <= 0 {
		c.MaxObjectSize = file.MaxObjectSize
	}
	if c.ChunkSize <= 0 {
		c.ChunkSize = 256 << 10
	}
	if c.InlineMax <= 0 {
		c.InlineMax = 4 << 20
	}
	if c.MaxSummaryBytes <= 0 {
		c.MaxSummaryBytes = 64 << 10
	}
	if c.EventMaxCount <= 0 {
		c.EventMaxCount = file.EventMaxCount
	}
	if c.AppliedMaxAge <= 0 {
		c.AppliedMaxAge = file.AppliedMaxAge
	}
	if c.AppliedMaxCount <= 0 {
		c.AppliedMaxCount = file.AppliedMaxCount
	}
	if c.PartialMaxAge <= 0 {
		c.PartialMaxAge = file.PartialMaxAge
	}
	if c.OpenTimeout <= 0 {
		c.OpenTimeout = 5 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Store is the core's durable store: one bbolt file holding, per agent, the
// current version of each key, received summaries, the event log, the
// applied-op index and partial ops. It is safe for concurrent use. Every
// method that changes data returns only after bbolt's fsync. Open starts
// the goroutine that folds the journal (store_journal.go), Close stops it.
type Store struct {
	db   *bolt.DB
	cfg  Config
	path string

	mu     sync.RWMutex // held for reading by every operation, for writing by Close
	closed bool

	group *groupcommit.Group[*bolt.Tx] // write transactions of concurrent callers (store_group.go)

	jnl journalIndex // the journal's contents and its fold goroutine (store_journal.go)
}

// Open opens or creates the store at path. A file that is not a bbolt
// database, is truncated or damaged, belongs to another program, or was
// written by a newer format gives ErrCorrupt or ErrVersion, never a panic.
// Open discards staging data left by a crash and partial ops older than
// PartialMaxAge.
func Open(path string, cfg Config) (s *Store, err error) {
	cfg = cfg.withDefaults()
	if cfg.ChunkSize > 64<<20 {
		return nil, fmt.Errorf("open store: chunk size %d over 64 MiB: %w", cfg.ChunkSize, ErrInvalid)
	}
	if err := checkFile(path); err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	var db *bolt.DB
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		// bbolt may panic on pages damaged in ways its checksums miss;
		// report that as corruption instead of crashing the core.
		if r := recover(); r != nil {
			err = fmt.Errorf("open store %s: %w: %v", path, ErrCorrupt, r)
			if db != nil {
				err = closeFailed(db, err)
			}
			s = nil
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      cfg.OpenTimeout,
		FreelistType: bolt.FreelistMapType,
		MaxSize:      cfg.maxFileSize,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) ||
			errors.Is(err, berrors.ErrVersionMismatch) || errors.Is(err, berrors.ErrInvalidMapping) {
			return nil, fmt.Errorf("open store %s: %w: %v", path, ErrCorrupt, err)
		}
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: locked by another process for %v (is another core running?): %w", path, cfg.OpenTimeout, err)
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s = &Store{db: db, cfg: cfg, path: path}
	s.group = groupcommit.New(s.updateTx, maxGroup, maxGroupBytes)
	if err := s.init(); err != nil {
		return nil, closeFailed(db, fmt.Errorf("open store %s: %w", path, err))
	}
	if cfg.VerifyOnOpen {
		if err := db.View(func(tx *bolt.Tx) error {
			var first error
			for cerr := range tx.Check() { // drain: Check's goroutine ends with the channel
				if first == nil {
					first = fmt.Errorf("%w: %v", ErrCorrupt, cerr)
				}
			}
			return first
		}); err != nil {
			return nil, closeFailed(db, fmt.Errorf("open store %s: %w", path, err))
		}
	}
	if err := s.loadJournal(); err != nil {
		return nil, closeFailed(db, fmt.Errorf("open store %s: %w", path, err))
	}
	if err := s.recover(); err != nil {
		return nil, closeFailed(db, fmt.Errorf("open store %s: %w", path, err))
	}
	if !cfg.foldOff {
		s.startFold()
	}
	return s, nil
}

// closeFailed closes db after Open failed with err and returns err, with
// the close error added when closing fails too.
func closeFailed(db *bolt.DB, err error) error {
	if cerr := db.Close(); cerr != nil {
		return fmt.Errorf("%w (closing the file failed too: %v)", err, cerr)
	}
	return err
}

// init writes the format marker into a new file and checks it in an old one.
func (s *Store) init() error {
	return s.update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		if meta == nil {
			var names []string
			// ForEach fails only when its function does, and this one
			// never does.
			_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
				names = append(names, string(name))
				return nil
			})
			if len(names) > 0 {
				return fmt.Errorf("%w: not an edge-sync core store (it has buckets %q)", ErrCorrupt, names)
			}
			return createLayout(tx)
		}
		if string(meta.Get(keyMagic)) != storeMagic {
			return fmt.Errorf("%w: not an edge-sync core store (magic %q)", ErrCorrupt, meta.Get(keyMagic))
		}
		f := meta.Get(keyFormat)
		if len(f) != 8 {
			return fmt.Errorf("%w: format marker is %d bytes", ErrCorrupt, len(f))
		}
		if v := beU64(f); v != FormatVersion {
			if v == 1 || v == 2 {
				// Format 1 is format 2 without inline data, format 2 is
				// format 3 without a journal: nothing to convert.
				if _, err := tx.CreateBucketIfNotExists(bktJournal); err != nil {
					return err
				}
				return meta.Put(keyFormat, u64b(FormatVersion))
			}
			if v > FormatVersion {
				return fmt.Errorf("%w: file has format %d, this edge-sync reads %d; upgrade edge-sync", ErrVersion, v, FormatVersion)
			}
			return fmt.Errorf("%w: file has format %d, this edge-sync reads %d", ErrVersion, v, FormatVersion)
		}
		if tx.Bucket(bktAgents) == nil {
			return fmt.Errorf("%w: agents bucket missing", ErrCorrupt)
		}
		if tx.Bucket(bktJournal) == nil {
			return fmt.Errorf("%w: journal bucket missing", ErrCorrupt)
		}
		return nil
	})
}

// createLayout writes the buckets and markers of a new, empty store.
func createLayout(tx *bolt.Tx) error {
	meta, err := tx.CreateBucket(bktMeta)
	if err != nil {
		return err
	}
	if err := meta.Put(keyMagic, []byte(storeMagic)); err != nil {
		return err
	}
	if err := meta.Put(keyFormat, u64b(FormatVersion)); err != nil {
		return err
	}
	if _, err := tx.CreateBucket(bktJournal); err != nil {
		return err
	}
	_, err = tx.CreateBucket(bktAgents)
	return err
}

// viewTx runs fn in a read transaction, guarded like update.
func (s *Store) viewTx(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer guard(&err)
	return s.db.View(fn)
}

// guard turns a panic (including a memory fault, see debug.SetPanicOnFault)
// into ErrCorrupt. It must be deferred directly.
func guard(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v", ErrCorrupt, r)
	}
}

// Close closes the database. Operations after Close return ErrClosed.
func (s *Store) Close() error {
	s.closeFold()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true

	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.path }

// acquire takes the read side of the close lock.
func (s *Store) acquire() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) release() { s.mu.RUnlock() }

func checkAgent(agent string) error {
	if agent == "" || len(agent) > MaxAgentNameLen || !utf8.ValidString(agent) {
		return fmt.Errorf("%w: agent name %q (want 1 to %d bytes of UTF-8)", ErrInvalid, agent, MaxAgentNameLen)
	}
	return nil
}

func checkKey(key string, kind edgesync.OpKind) error {
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: key of %d bytes, limit %d", ErrTooLarge, len(key), MaxKeyLen)
	}
	if kind == edgesync.StateOp && key == "" {
		return fmt.Errorf("%w: state op without a key", ErrInvalid)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: key %q is not UTF-8", ErrInvalid, key)
	}
	return nil
}

// PartialHeader describes an op being received: what it is and what its
// assembled plain data must be.
type PartialHeader struct {
	OpID     edgesync.OpID
	Key      string
	Kind     edgesync.OpKind
	Priority edgesync.Priority
	// Size is the total plain (decoded) size in bytes.
	Size int64
	// Hash is the SHA-256 of the plain data.
	Hash [32]byte
	// HasBase marks a delta: the op may only be applied while the key's
	// current version hashes to BaseHash.
	HasBase  bool
	BaseHash [32]byte
}

func (s *Store) checkHeader(h PartialHeader) error {
	if h.OpID.IsZero() {
		return fmt.Errorf("%w: zero op id", ErrInvalid)
	}
	if !h.Kind.Valid() {
		return fmt.Errorf("%w: op %s has kind %d", ErrInvalid, h.OpID, uint8(h.Kind))
	}
	if !h.Priority.Valid() {
		return fmt.Errorf("%w: op %s has priority %d", ErrInvalid, h.OpID, h.Priority)
	}
	if h.HasBase && h.Kind != edgesync.StateOp {
		return fmt.Errorf("%w: op %s is an event with a delta base", ErrInvalid, h.OpID)
	}
	if h.Size < 0 {
		return fmt.Errorf("%w: op %s has size %d", ErrInvalid, h.OpID, h.Size)
	}
	if h.Size > s.cfg.MaxObjectSize {
		return fmt.Errorf("%w: op %s is %d bytes, limit %d", ErrTooLarge, h.OpID, h.Size, s.cfg.MaxObjectSize)
	}
	return checkKey(h.Key, h.Kind)
}

// Result is the outcome of applying an op.
type Result struct {
	OpID edgesync.OpID
	Kind edgesync.OpKind
	Key  string
	// Duplicate is true when the op had been applied before; it was not
	// applied again and should be acknowledged again.
	Duplicate bool
	// Stale is true when a newer version of the key was already current;
	// the op is recorded as applied but its data is not kept.
	Stale bool
	// Version is the key's new version counter (state ops).
	Version uint64
	// Seq is the event's sequence number (event ops).
	Seq  uint64
	Size int64
	Hash [32]byte
}

// Version is the metadata of the current version of a key.
type Version struct {
	Key      string
	OpID     edgesync.OpID
	Size     int64
	Hash     [32]byte
	Priority edgesync.Priority
	Stored   time.Time
	// Version counts the versions of the key stored so far, from 1.
	Version uint64
	blob    uint64
	inline  []byte // the data, when the record holds it (no blob)
}

// Event is the metadata of one entry in an agent's event log.
type Event struct {
	Seq      uint64
	OpID     edgesync.OpID
	Key      string
	Size     int64
	Hash     [32]byte
	Priority edgesync.Priority
	Stored   time.Time
	blob     uint64
	inline   []byte // the data, when the record holds it (no blob)
}

// Summary is the latest summary received for a key: the op's metadata and
// the producer's summary bytes, sent ahead of the full data on slow links.
type Summary struct {
	OpID  edgesync.OpID `json:"op"`
	Key   string        `json:"key"`
	Size  int64         `json:"size"`
	Hash  [32]byte      `json:"-"` // in JSON "sha256", hex (MarshalJSON)
	Time  time.Time     `json:"time"`
	Bytes []byte        `json:"summary"` // the producer's summary; base64 in JSON
	// Superseded is set once the full data of this op (or a newer one) is stored.
	Superseded bool `json:"superseded"`
}

// summaryJSON is a Summary in JSON: the hash in hex, as the admin API's
// other answers carry it.
type summaryJSON struct {
	summaryFields
	SHA256 string `json:"sha256"`
}

type summaryFields Summary

// MarshalJSON writes the summary with its hash in hex.
func (s Summary) MarshalJSON() ([]byte, error) {
	return json.Marshal(summaryJSON{summaryFields(s), hex.EncodeToString(s.Hash[:])})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Summary) UnmarshalJSON(b []byte) error {
	var j summaryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = Summary(j.summaryFields)
	if j.SHA256 != "" {
		h, err := hex.DecodeString(j.SHA256)
		if err != nil || len(h) != len(s.Hash) {
			return fmt.Errorf("summary: sha256 %q: want 64 hex digits", j.SHA256)
		}
		copy(s.Hash[:], h)
	}
	return nil
}

// checkFile refuses a file bbolt would fault on, past any recover (one
// truncated below what its header says), before bbolt maps it: ErrCorrupt.
func checkFile(path string) error {
	err := boltfile.Check(path)
	if errors.Is(err, boltfile.ErrDamaged) {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return err
}
