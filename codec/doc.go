// Package codec encodes operation payloads for the wire: as they are (full),
// zstd, delta against a base version (delta, delta+zstd), or as a summary,
// with SHA-256 integrity and limits against hostile input.
//
// # Encoding
//
// A payload is described by a Header (mode, level, chunk size, delta margin,
// plain size and SHA-256, and for deltas the base's size and SHA-256) and
// cut into chunks of Header.ChunkSize plain bytes. Each chunk is encoded
// independently (its own zstd frames), so a transfer can resume at any
// chunk boundary, and encoding is deterministic for the same header and
// input (encoders run with concurrency 1), so a resumed transfer continues
// the same byte stream: Encoder.EncodeStream(…, from) reproduces the tail of
// the full stream from chunk from on.
//
// A delta chunk is cut into blocks of 1 MiB; the block at plain offset X
// is rebuilt from base[X-m : X+len+m] (m = Header.DeltaMargin, 8 KiB by
// default), which it records so the decoder does not depend on the policy,
// by a program of ops: new bytes, then a copy from the region at a cursor
// that follows the block (delta.go); ops and new bytes are stored raw, as
// zstd or Huffman-coded, whichever is smallest. Each chunk records the mode it
// actually used: a delta that the base did not help falls back to zstd
// (delta+zstd) or full, and any compressed form that is not smaller than the
// plain bytes falls back to full, so an encoded chunk is never more than a
// few bytes larger than its plain bytes.
//
// Main types: Mode, Level, Hash, Header, Base, Encoder, Decoder, Summary,
// Limits. Encode and Decode are one-call helpers for payloads in memory.
//
// # Limits
//
// Decoders refuse a header above Limits (ErrTooLarge), a chunk that declares
// more plain bytes than its header (ErrTooLarge), and a compressed body that
// is not smaller than its declared plain bytes (ErrCorrupt). zstd decoding
// is capped at the chunk's declared length (WithDecodeAllCapLimit) and at
// MaxChunkSize of window and memory, so a decompression bomb fails with
// ErrTooLarge after at most one chunk of output. A Decoder's scratch (a
// chunk's stored body when not read in place, a delta block's streams and
// its base region, up to MaxDeltaRegion) grows only after Decoder.Budget,
// when set, has reserved it; Free gives it back. DecodeStream checks the
// base's size and SHA-256 before applying anything (ErrBaseMismatch) and the
// payload's SHA-256 at the end (ErrHashMismatch).
//
// # Caveats
//
//   - Bytes a decoder writes are unverified until DecodeStream returns nil:
//     write them somewhere temporary and commit only after success.
//   - DecodeChunk checks the base's size, not its hash; call
//     Header.CheckBase once before applying chunks one by one.
//   - A block's old bytes are found by two 64-byte anchors within 1 MiB of
//     its own offset (so a large insertion or deletion before it does not
//     turn the rest into new data); edits that move data further, or that
//     hit both anchors, leave the block coded against its default region.
//   - Deltas (delta+zstd, better) are 0.8-1.13x the size of `zstd -19
//     --patch-from` at 1 MiB chunks and 0.9-1.2x at 64 KiB chunks, where
//     every chunk pays for its own stream heads and Huffman tables.
//   - Encoder and Decoder are not safe for concurrent use; use one per
//     goroutine. The zstd encoders and decoders behind them are pooled.
package codec
