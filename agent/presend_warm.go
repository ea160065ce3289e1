package agent

import "math/rand/v2"

// A process's first chunk of an encoding is slow: on the 2-core test
// machine the first 1.4 MiB zstd chunk of an agent took 75-115 ms to
// encode (a fresh zstd encoder's tables and history, the heap growing),
// later ones 1-15 ms; on 20 Mbit/s that is 1-2 % of a 16 MiB op, spent
// before its first packet (issue 14, BenchmarkGoodputProcesses). So a
// presend encodes a chunk of noise the way its first chunk will be
// encoded while the outbox reads that chunk from the producer (about as
// long), and the first chunk waits for it (warmed): the encoder is then
// in the codec's pool and the presend's buffers have their size.

// warm encodes a chunk of noise with the presend's encoding, into its
// own buffers, and closes p.warmed.
func (p *presend) warm() {
	defer close(p.warmed)
	ch := p.t.ch
	noise := make([]byte, ch.ChunkSize)
	r := rand.NewChaCha8([32]byte{})
	_, _ = r.Read(noise) // ChaCha8.Read never fails
	enc, err := p.enc.enc.EncodeChunk(p.enc.encoded[:0], &ch, 0, noise, nil)
	if err == nil {
		p.enc.encoded = enc
	}
	p.enc.plain = noise
}
