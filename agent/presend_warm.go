package agent

import (
	"context"
	"math/bits"
	"math/rand/v2"
	"sync"

	"github.com/edge-sync/edge-sync/codec"
	"github.com/edge-sync/edge-sync/linkmon"
)

// A process's first chunk of an encoding is slow: on the 2-core test
// machine the first 1.4 MiB zstd chunk of an agent took 75-115 ms to
// encode (a fresh zstd encoder's tables and history, the heap growing),
// later ones 1-15 ms; on 20 Mbit/s that is 1-2 % of a 16 MiB op, spent
// before its first packet (BenchmarkGoodputProcesses). So an endpoint
// encodes a chunk of noise the way its ops will be encoded as soon as the
// link's sync parameters say how (warmEncodings), once per encoding and
// process: on an agent just started that is before its first op, while the
// link is idle, and the encoder is then in the codec's pool. A presend
// whose encoding was not warmed yet encodes a chunk of noise itself while
// the outbox reads its first chunk from the producer (about as long), and
// the first chunk waits for it (warmed); that encoding took CPU from the
// outbox's read of the first chunk on a busy machine, which is why it is
// done ahead now.

// warmKey is what the codec pools zstd encoders by: the level and the
// window, the chunk size's power of two (codec/pool.go).
type warmKey struct {
	level  codec.Level
	window int
}

func warmKeyOf(h *codec.Header) warmKey {
	return warmKey{level: h.Level, window: bits.Len(uint(h.ChunkSize - 1))}
}

// warmedEncodings records the encodings this process has encoded a chunk
// of noise in (a warmKey each).
var warmedEncodings sync.Map

// warmEncoding encodes a chunk of noise in h's encoding with enc, so that
// a zstd encoder for it is in the codec's pool, and records the encoding
// as warmed. It returns the noise.
func warmEncoding(enc *opSender, h codec.Header) []byte {
	noise := make([]byte, h.ChunkSize)
	r := rand.NewChaCha8([32]byte{})
	_, _ = r.Read(noise) // ChaCha8.Read never fails
	out, err := enc.enc.EncodeChunk(enc.encoded[:0], &h, 0, noise, nil)
	if err == nil {
		enc.encoded = out
		warmedEncodings.Store(warmKeyOf(&h), true)
	}
	return noise
}

// warmEncodings warms the encoding of a large op under the endpoint's
// sync parameters (full+zstd at its level and chunk size) whenever they
// change to one this process has not encoded yet, until ctx ends.
func (e *endpoint) warmEncodings(ctx context.Context) {
	for {
		p, _, changed := e.params()
		if h, ok := zstdHeader(p); ok {
			if _, done := warmedEncodings.Load(warmKeyOf(&h)); !done {
				warmEncoding(newOpSender(), h)
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// zstdHeader is the header of a large op compressed with zstd under p;
// ok is false when p does not compress with zstd.
func zstdHeader(p linkmon.SyncParameters) (codec.Header, bool) {
	if codecMode(p, false) != codec.ModeZstd {
		return codec.Header{}, false
	}
	chunk := chunkSizeOf(p)
	h, err := codec.NewHeader(codec.ModeZstd, codecLevel(p), chunk, int64(chunk)+1, codec.Hash{}, nil)
	return h, err == nil
}

// warm encodes a chunk of noise with the presend's encoding, into its
// own buffers, unless this process has encoded one already
// (warmEncodings), and closes p.warmed.
func (p *presend) warm() {
	defer close(p.warmed)
	ch := p.t.ch
	if ch.Mode != codec.ModeZstd {
		return
	}
	if _, done := warmedEncodings.Load(warmKeyOf(&ch)); done {
		return
	}
	p.enc.plain = warmEncoding(p.enc, ch)
}
