package codec

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/edge-sync/edge-sync/internal/enum"
)

// Hash is the SHA-256 of a plain payload (never of its encoding).
type Hash [32]byte

// HashBytes returns the SHA-256 of b.
func HashBytes(b []byte) Hash { return sha256.Sum256(b) }

// HashOf reads r to its end and returns its SHA-256 and length.
func HashOf(r io.Reader) (Hash, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return Hash{}, n, fmt.Errorf("hash payload: %w", err)
	}
	var out Hash
	h.Sum(out[:0])
	return out, n, nil
}

// IsZero reports whether h is all zero (no hash known).
func (h Hash) IsZero() bool { return h == Hash{} }

// String returns h in lowercase hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error { return enum.UnmarshalText(h, b, ParseHash) }

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("parse hash: want %d hex digits, got %d: %w", 2*len(h), len(s), ErrBadParam)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return Hash{}, fmt.Errorf("parse hash: %w: %w", ErrBadParam, err)
	}
	return h, nil
}
