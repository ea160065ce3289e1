package codec

import (
	"fmt"
	"io"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// zstd encoders are pooled by what cannot change on ResetWithOptions: level
// and window size. Whether a dictionary is used is part of the key too,
// because switching between dictionary and no dictionary rebuilds the
// encoder's internals. Literal entropy coding is part of the key so that a
// pooled encoder never carries a setting from its previous use. Each pooled
// encoder runs with concurrency 1: no goroutines, deterministic output.
//
// A delta must index its dictionary (the base region) for every chunk: that
// work is proportional to the region and cannot be shared between chunks
// because each chunk has its own region. What the pool saves is allocating
// the encoder's tables and history buffers.

const (
	// minWindowLog is 128 KiB: smaller windows save little memory, and a
	// coarse set of windows keeps the number of pool keys small. A frame
	// still declares a window no larger than its content.
	minWindowLog = 17
	maxWindowLog = 27 // 128 MiB: enough for MaxChunkSize + MaxDeltaRegion
	// perKeyPool is how many idle encoders are kept per key. A fixed pool,
	// not sync.Pool: sync.Pool drops its items at every GC, which under
	// allocation-heavy load meant a new encoder (megabytes of tables) per op.
	perKeyPool = 2
)

type encKey struct {
	level     Level
	windowLog uint8
	dict      bool
	noEntropy bool
}

var encPools sync.Map // encKey -> chan *zstd.Encoder

// placeholderDict is registered when a dictionary encoder is built, so that
// later ResetWithOptions calls only swap the dictionary content.
var placeholderDict = []byte{0}

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
	}
	if k.dict {
		opts = append(opts, zstd.WithEncoderDictRaw(0, placeholderDict))
	}
	e, err := zstd.NewWriter(nil, opts...)
	if err != nil {
		return nil, fmt.Errorf("new zstd encoder: %w", err)
	}
	return e, nil
}

func putEncoder(k encKey, e *zstd.Encoder) {
	if k.dict {
		// Drop the reference to the caller's base region. The encoder keeps
		// its own history copy, which is reused by the next delta.
		_ = e.ResetWithOptions(io.Discard, zstd.WithEncoderDictRaw(0, placeholderDict))
	}
	p, _ := encPools.Load(k)
	select {
	case p.(chan *zstd.Encoder) <- e:
	default: // pool full: let the GC have it
	}
}

// Decoders: one pool for plain frames and one for frames with a raw
// dictionary. Every decoder caps window and memory at MaxChunkSize, and
// DecodeAll is limited to the capacity it is given (the declared chunk size),
// so a frame claiming or producing more fails with ErrDecoderSizeExceeded.
var (
	plainDecoders sync.Pool
	dictDecoders  sync.Pool
)

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

func getDecoder(dict []byte) (*zstd.Decoder, error) {
	pool := &plainDecoders
	if dict != nil {
		pool = &dictDecoders
	}
	d, ok := pool.Get().(*zstd.Decoder)
	if !ok {
		var err error
		if d, err = newDecoder(); err != nil {
			return nil, err
		}
	}
	if dict != nil {
		if err := d.ResetWithOptions(nil, zstd.WithDecoderDictRaw(0, dict)); err != nil {
			return nil, fmt.Errorf("set zstd dictionary: %w", err)
		}
	}
	return d, nil
}

func putDecoder(d *zstd.Decoder, dict bool) {
	if dict {
		if err := d.ResetWithOptions(nil, zstd.WithDecoderDictDelete()); err != nil {
			d.Close()
			return
		}
		dictDecoders.Put(d)
		return
	}
	plainDecoders.Put(d)
}
