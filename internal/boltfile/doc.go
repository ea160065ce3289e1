// Package boltfile checks a bbolt file's header before bbolt maps the file
// into memory, for the two stores that keep their data in bbolt: the
// agent's outbox and the core's bolt store.
//
// bbolt trusts its meta page: a file truncated below the meta page's high
// water mark, or whose meta page points past the data, makes bbolt fault
// (SIGBUS) when it reads the missing pages, and no recover can catch that.
// Check reads both meta pages the way bbolt does and refuses such a file
// with an error wrapping ErrDamaged, which each store turns into its own
// ErrCorrupt. It never writes the file.
//
// # Caveats
//
//   - It reads the meta pages as little-endian, as bbolt writes them on the
//     platforms edge-sync is built for.
//   - It checks the header only. Damage inside the data pages is for
//     bbolt's own checks and the stores' checksums; a file that passes may
//     still fail later reads with an error (never a fault).
package boltfile
