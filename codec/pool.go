package codec

import (
	"fmt"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstd encoders are pooled by what cannot change on ResetWithOptions: level
// and window size. Literal entropy coding is part of the key so that a
// pooled encoder never carries a setting from its previous use. Each pooled
// encoder runs with concurrency 1: no goroutines, deterministic output. What
// the pool saves is allocating the encoder's tables and history buffers.

const (
	// minWindowLog is 128 KiB: smaller windows save little memory, and a
	// coarse set of windows keeps the number of pool keys small. A frame
	// still declares a window no larger than its content.
	minWindowLog = 17
	maxWindowLog = 24 // 16 MiB: MaxChunkSize
	// perKeyPool is how many idle encoders are kept per key. A fixed pool,
	// not sync.Pool: sync.Pool drops its items at every GC, which under
	// allocation-heavy load meant a new encoder (megabytes of tables) per op.
	perKeyPool = 2
)

type encKey struct {
	level     Level
	windowLog uint8
	noEntropy bool
}

var encPools sync.Map // encKey -> chan *zstd.Encoder

func windowLogFor(n int) uint8 {
	if n <= 1<<minWindowLog {
		return minWindowLog
	}
	l := uint8(bits.Len(uint(n - 1)))
	return min(l, maxWindowLog)
}

func getEncoder(k encKey) (*zstd.Encoder, error) {
	p, ok := encPools.Load(k)
	if !ok {
		p, _ = encPools.LoadOrStore(k, make(chan *zstd.Encoder, perKeyPool))
	}
	select {
	case e := <-p.(chan *zstd.Encoder):
		return e, nil
	default:
	}
	opts := []zstd.EOption{
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(k.level.zstd()),
		zstd.WithWindowSize(1 << k.windowLog),
		zstd.WithEncoderCRC(false), // the payload's SHA-256 covers integrity
		zstd.WithNoEntropyCompression(k.noEntropy),
		// Every frame declares its content size, even below 256 bytes, so
		// that a decoder can refuse one larger than it expects up front.
		zstd.WithSingleSegment(true),
	}
	e, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("new zstd encoder: %w", err)
	}
	return e, nil
}

func putEncoder(k encKey, e *zstd.Encoder) {
	p, _ := encPools.Load(k)
	select {
	case p.(chan *zstd.Encoder) <- e:
	default: // pool full: let the GC have it
	}
}

// Decoders are pooled. Every decoder caps window and memory at
// MaxChunkSize, and DecodeAll is limited to the capacity it is given (the
// declared size), so a frame claiming or producing more fails with
// ErrDecoderSizeExceeded.
var decoders sync.Pool

func newDecoder() (*zstd.Decoder, error) {
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxChunkSize),
		zstd.WithDecoderMaxWindow(MaxChunkSize),
		zstd.WithDecodeAllCapLimit(true),
		zstd.IgnoreChecksum(false),
	)
	if err != nil {
		return nil, fmt.Errorf("new zstd decoder: %w", err)
	}
	return d, nil
}

func getDecoder() (*zstd.Decoder, error) {
	if d, ok := decoders.Get().(*zstd.Decoder); ok {
		return d, nil
	}
	return newDecoder()
}

func putDecoder(d *zstd.Decoder) { decoders.Put(d) }
