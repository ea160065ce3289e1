package codec

import "errors"

// Sentinel errors. Callers test them with errors.Is; every error the package
// returns wraps one of these (or io.ErrUnexpectedEOF for truncated input, or
// the caller's own I/O error) with the operation that failed.
var (
	// ErrTooLarge means a declared or decoded size is above a limit or above
	// what the header declared: a decompression bomb fails with this.
	ErrTooLarge = errors.New("codec: data larger than declared or allowed")
	// ErrHashMismatch means the decoded payload's SHA-256 differs from the
	// hash in its header.
	ErrHashMismatch = errors.New("codec: payload hash mismatch")
	// ErrBaseMismatch means a delta was made against a different base than
	// the one offered for applying it (size or SHA-256 differ).
	ErrBaseMismatch = errors.New("codec: base does not match the delta's base")
	// ErrNoBase means a delta needs a base and none was given.
	ErrNoBase = errors.New("codec: delta needs a base")
	// ErrCorrupt means encoded data is malformed: bad field, bad zstd frame,
	// inconsistent sizes.
	ErrCorrupt = errors.New("codec: corrupt encoded data")
	// ErrBadMode means a mode byte or name is not a known mode, or the mode
	// cannot be used where it was given (e.g. summary for a chunk).
	ErrBadMode = errors.New("codec: unknown or unusable mode")
	// ErrBadLevel means a compression level is not known.
	ErrBadLevel = errors.New("codec: unknown compression level")
	// ErrBadParam means an encoding parameter (chunk size, margin, sizes) is
	// out of range.
	ErrBadParam = errors.New("codec: parameter out of range")
)
