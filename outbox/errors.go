package outbox

import "errors"

// Sentinel errors returned (wrapped) by the outbox. Match them with errors.Is.
var (
	// ErrClosed is returned by every method called after Close.
	ErrClosed = errors.New("outbox closed")
	// ErrFull means the outbox is at MaxOps or MaxBytes and the new op's
	// priority is not strictly higher than the lowest priority stored.
	ErrFull = errors.New("outbox full")
	// ErrTooLarge means an op's payload exceeds MaxOpBytes (or MaxBytes).
	ErrTooLarge = errors.New("op too large")
	// ErrNotFound means the op is not in the outbox (acked, dropped or never enqueued).
	ErrNotFound = errors.New("op not found")
	// ErrInvalid marks a bad argument or option; the message names it.
	ErrInvalid = errors.New("invalid argument")
	// ErrCorrupt means the file is damaged or truncated, or is not a bbolt file.
	ErrCorrupt = errors.New("outbox file corrupt")
	// ErrDamaged means an op's stored bytes (its record or its payload)
	// fail their checksum: the op is quarantined, never sent, and the rest
	// of the outbox goes on (docs/outbox.md#integrity).
	ErrDamaged = errors.New("op damaged on disk")
	// ErrLocked means another process (a running agent) holds the file.
	ErrLocked = errors.New("outbox file locked by another process")
	// ErrForeign means the file is a bbolt database that is not an outbox.
	ErrForeign = errors.New("not an outbox file")
	// ErrVersion means the file was written by a newer on-disk format version.
	ErrVersion = errors.New("unsupported outbox format version")
	// ErrNoSpace means the disk (or the configured MaxFileSize) is full; the
	// op was not stored and everything stored before stays readable.
	ErrNoSpace = errors.New("no space left for outbox")
)
