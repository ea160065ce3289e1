package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tmpSuffix ends the name of every temporary file: NAME.RANDOM.tmp.
const tmpSuffix = ".tmp"

// WriteFile replaces path with data, mode perm.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write replaces path with what write writes, mode perm. When write (or
// anything after it) fails, path keeps its old content and the temporary
// file is removed; write's error is returned wrapped.
func Write(path string, perm fs.FileMode, write func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, base+".*"+tmpSuffix)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	renamed := false
	defer func() {
		if renamed {
			return
		}
		// The write already failed; the temporary file is ours to drop, and
		// an error closing or removing it adds nothing the caller can use.
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	renamed = true
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("write %s: sync dir: %w", path, err)
	}
	return nil
}

// SyncDir makes the renames and links made in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// IsTemp reports whether name (a base name) is a temporary file of this
// package, i.e. the leftover of a write that did not finish.
func IsTemp(name string) bool { return strings.HasSuffix(name, tmpSuffix) }

// RemoveTemps removes the leftovers of interrupted writes of path (files
// named after path's base name and ending in .tmp in its directory). It is
// safe to call while other targets in the directory are being written, not
// while path itself is. A missing directory is no error.
func RemoveTemps(path string) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	return sweep(dir, func(name string) bool {
		return strings.HasPrefix(name, base+".") && IsTemp(name)
	})
}

// SweepDir removes every leftover of an interrupted write in dir. Call it
// only when nothing writes into dir, e.g. when its owner opens it. A
// missing directory is no error.
func SweepDir(dir string) error {
	return sweep(dir, IsTemp)
}

func sweep(dir string, match func(name string) bool) error {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sweep temporary files: %w", err)
	}
	var first error
	for _, de := range des {
		if !de.Type().IsRegular() || !match(de.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, de.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) && first == nil {
			first = fmt.Errorf("sweep temporary files: %w", err)
		}
	}
	return first
}
