// Package atomicfile replaces a file so that readers, and the file system
// after a crash, see either its old content or its new content, never a mix.
//
// # Basics
//
// WriteFile writes a byte slice; Write streams into the file through a
// callback, for content too large to hold in memory. Both write a temporary
// file in the target's directory, fsync it, set its mode, rename it over the
// target and fsync the directory, so that the rename itself survives a
// power cut. A failed write removes its temporary file and leaves the target
// as it was.
//
// # Leftovers
//
// A crash between creating the temporary file and the rename leaves it
// behind as NAME.RANDOM.tmp beside NAME. Owners sweep them when they start:
// RemoveTemps(path) removes the leftovers of one target, which is safe while
// other files in the same directory are being written; SweepDir(dir)
// removes every leftover in a directory that a single owner writes, and must
// not run while a write into that directory is in progress.
//
// # Caveats
//
// The target's directory must exist. The mode is set with chmod, so the
// umask does not apply. Two concurrent writes of the same target are both
// atomic, and the last rename wins.
package atomicfile
