package outbox

import (
	"fmt"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/hashicorp/go-hclog"
)

// Defaults applied by Open to zero-valued Options fields.
const (
	DefaultMaxOps      = 10000
	DefaultMaxBytes    = 8 << 30 // 8 GiB
	DefaultMaxOpBytes  = 1 << 30 // 1 GiB
	DefaultDropBuffer  = 1024
	DefaultLockTimeout = 5 * time.Second

	// MaxEndpointLen, MaxKeyLen and MaxSummaryLen bound an op's metadata,
	// which is kept in memory for every stored op.
	MaxEndpointLen = 255
	MaxKeyLen      = 1024
	MaxSummaryLen  = 64 << 10

	defaultChunkSize   = 1 << 20 // payload bytes per bbolt value
	defaultStageChunks = 4       // chunks per transaction for large payloads
)

// Options configures an Outbox. The zero value is valid: every zero field
// takes its documented default. config maps its `outbox` block onto it.
type Options struct {
	// MaxOps bounds the number of stored ops (default 10000).
	MaxOps int
	// MaxBytes bounds the sum of stored payload sizes (default 8 GiB).
	MaxBytes int64
	// MaxOpBytes bounds one op's payload (default 1 GiB).
	MaxOpBytes int64
	// DefaultTTL is the TTL per priority for ops enqueued without one; 0 means none.
	DefaultTTL [edgesync.NumPriorities]time.Duration
	// DropBuffer is the capacity of the Drops channel (default 1024);
	// drops that find it full are counted in Stats.DropsUnreported.
	DropBuffer int
	// LockTimeout bounds the wait for the file lock held by another process (default 5s).
	LockTimeout time.Duration
	// MaxFileSize caps the bbolt file size in bytes (bbolt Options.MaxSize);
	// 0 means no cap. Meant for tests of a full disk.
	MaxFileSize int
	// Logger receives the outbox's logs, used as given (the owner names it,
	// e.g. logger.Named("outbox")); nil means hclog.NewNullLogger().
	Logger hclog.Logger
	// Now is the clock (default time.Now); tests replace it.
	Now func() time.Time

	// chunkSize and stageChunks are test knobs; a file keeps the chunk size it was created with.
	chunkSize   int
	stageChunks int
}

func (o Options) withDefaults() (Options, error) {
	switch {
	case o.MaxOps < 0:
		return o, fmt.Errorf("options: MaxOps %d is negative: %w", o.MaxOps, ErrInvalid)
	case o.MaxBytes < 0:
		return o, fmt.Errorf("options: MaxBytes %d is negative: %w", o.MaxBytes, ErrInvalid)
	case o.MaxOpBytes < 0:
		return o, fmt.Errorf("options: MaxOpBytes %d is negative: %w", o.MaxOpBytes, ErrInvalid)
	case o.DropBuffer < 0:
		return o, fmt.Errorf("options: DropBuffer %d is negative: %w", o.DropBuffer, ErrInvalid)
	case o.LockTimeout < 0:
		return o, fmt.Errorf("options: LockTimeout %v is negative: %w", o.LockTimeout, ErrInvalid)
	case o.MaxFileSize < 0:
		return o, fmt.Errorf("options: MaxFileSize %d is negative: %w", o.MaxFileSize, ErrInvalid)
	}
	for p, ttl := range o.DefaultTTL {
		if ttl < 0 {
			return o, fmt.Errorf("options: DefaultTTL[%s] %v is negative: %w", edgesync.Priority(p), ttl, ErrInvalid)
		}
	}
	if o.MaxOps == 0 {
		o.MaxOps = DefaultMaxOps
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxOpBytes == 0 {
		o.MaxOpBytes = DefaultMaxOpBytes
	}
	if o.DropBuffer == 0 {
		o.DropBuffer = DefaultDropBuffer
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.chunkSize == 0 {
		o.chunkSize = defaultChunkSize
	}
	if o.stageChunks == 0 {
		o.stageChunks = defaultStageChunks
	}
	return o, nil
}
