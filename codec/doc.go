// Package codec encodes operation payloads for the wire: as they are, zstd,
// delta against a base version, or summary, with integrity hashes and limits.
package codec
