package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// names lists the directory's entries, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func TestWriteFileCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "status.json")
	for _, tc := range []struct {
		data string
		perm os.FileMode
	}{{"first", 0o600}, {"second, longer than the first", 0o644}, {"3", 0o600}} {
		if err := WriteFile(path, []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.data {
			t.Fatalf("content %q, want %q", got, tc.data)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tc.perm {
			t.Fatalf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
		}
	}
	if got := names(t, dir); !slices.Equal(got, []string{"status.json"}) {
		t.Fatalf("directory holds %q, want only status.json", got)
	}
}

func TestWriteStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "base")
	err := Write(path, 0o600, func(w io.Writer) error {
		if _, err := io.WriteString(w, "head|"); err != nil {
			return err
		}
		_, err := io.Copy(w, strings.NewReader("body"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "head|body" {
		t.Fatalf("content %q, want %q", got, "head|body")
	}
}

// A write that fails halfway leaves the old file as it was and no
// temporary file behind.
func TestFailedWriteKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	if err := WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("producer failed")
	err := Write(path, 0o644, func(w io.Writer) error {
		if _, err := io.WriteString(w, "new, half written"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the callback's error", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Fatalf("error %q does not name %s", err, path)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "old" {
		t.Fatalf("content %q after a failed write, want the old %q", got, "old")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v after a failed write, want the old 0600", fi.Mode().Perm())
	}
	if got := names(t, dir); !slices.Equal(got, []string{"key.pem"}) {
		t.Fatalf("directory holds %q after a failed write, want only key.pem", got)
	}
}

// A rename that fails (the target is a non-empty directory) also leaves
// no temporary file.
func TestFailedRenameLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "target")
	if err := os.MkdirAll(filepath.Join(path, "inside"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("x"), 0o600); err == nil {
		t.Fatal("replacing a non-empty directory succeeded")
	}
	if got := names(t, dir); !slices.Equal(got, []string{"target"}) {
		t.Fatalf("directory holds %q, want only target", got)
	}
}

func TestWriteMissingDir(t *testing.T) {
	path := filepath.Join(t.TempDir(), "no-such-dir", "f")
	err := WriteFile(path, []byte("x"), 0o600)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want a not-exist error naming %s", err, path)
	}
}

// leftovers makes files like those a crash between create and rename leaves.
func leftovers(t *testing.T, dir string, files ...string) {
	t.Helper()
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("junk"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRemoveTempsOnlyOfItsTarget(t *testing.T) {
	dir := t.TempDir()
	leftovers(t, dir,
		"link-a.json", "link-a.json.123.tmp", "link-a.json.tmp", // a's: new and older name
		"link-ab.json.9.tmp", // another target's, whose name starts alike
		"link-b.json.77.tmp", // another target's
	)
	if err := RemoveTemps(filepath.Join(dir, "link-a.json")); err != nil {
		t.Fatal(err)
	}
	want := []string{"link-a.json", "link-ab.json.9.tmp", "link-b.json.77.tmp"}
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Fatalf("after RemoveTemps: %q, want %q", got, want)
	}
}

func TestSweepDir(t *testing.T) {
	dir := t.TempDir()
	leftovers(t, dir, "a.base", "a.base.1.tmp", "b.base.2.tmp", "notes.txt")
	if err := os.Mkdir(filepath.Join(dir, "d.tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := SweepDir(dir); err != nil {
		t.Fatal(err)
	}
	want := []string{"a.base", "d.tmp", "notes.txt"} // directories are never swept
	if got := names(t, dir); !slices.Equal(got, want) {
		t.Fatalf("after SweepDir: %q, want %q", got, want)
	}
	if err := SweepDir(filepath.Join(dir, "missing")); err != nil {
		t.Fatalf("SweepDir of a missing directory: %v", err)
	}
}

// A temporary file a write is making is named so that the sweep finds it.
func TestTempNameIsSwept(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	var seen []string
	err := Write(path, 0o600, func(io.Writer) error {
		seen = names(t, dir)
		return errors.New("stop before the rename")
	})
	if err == nil || len(seen) != 1 || !IsTemp(seen[0]) || !strings.HasPrefix(seen[0], "f.") {
		t.Fatalf("during the write the directory held %q (err %v), want one temporary f.*.tmp", seen, err)
	}
}
