package edgesync

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Comments cite the repository's own docs, never an issue tracker or a
// file outside the repository (docs/architecture.md, "Repository").
var (
	citesIssue   = regexp.MustCompile(`(?i)\bissues?\s*#?\d+`)
	citesHash    = regexp.MustCompile(`(^|[^\w&/])#\d+\b`)
	hashStandard = regexp.MustCompile(`PKCS\s?#\d+`)
	citesUp      = regexp.MustCompile(`\.\./[\w.]`)
	citesMD      = regexp.MustCompile(`[\w./-]*\.md\b`)
)

// citeProblem says what a comment line cites that it should not, or "".
func citeProblem(line string) string {
	if m := citesIssue.FindString(line); m != "" {
		return "cites an issue number (" + m + "): cite docs/ or say the fact"
	}
	if m := citesHash.FindString(hashStandard.ReplaceAllString(line, "")); m != "" {
		return "cites an issue number (" + strings.TrimSpace(m) + "): cite docs/ or say the fact"
	}
	if m := citesUp.FindString(line); m != "" {
		return "cites a path outside the repository (" + m + "...)"
	}
	for _, m := range citesMD.FindAllString(line, -1) {
		if _, err := os.Stat(filepath.FromSlash(m)); err != nil {
			return "cites " + m + ", which is not a file of the repository (cite it from the root, as docs/x.md)"
		}
	}
	return ""
}

func TestCiteProblem(t *testing.T) {
	bad := []string{
		"a test (issue #14, BenchmarkX)",
		"issue 14's clean link",
		"Issue #12 item 5: the watchdog",
		"seen twice (#14)",
		"see ../shared/STYLE.md",
		"the thresholds (DESIGN.md §3)",
		"docs/nosuch.md",
	}
	for _, l := range bad {
		if citeProblem(l) == "" {
			t.Errorf("citeProblem(%q) found nothing", l)
		}
	}
	good := []string{
		`(docs/linkmon.md, "What a loaded machine did to the figures")`,
		"HKDF-SHA256 over the key's PKCS #8 encoding",
		"PKCS#8 or SEC 1",
		"io.Copy and core get issue them",
		"README.md's figures",
	}
	for _, l := range good {
		if p := citeProblem(l); p != "" {
			t.Errorf("citeProblem(%q) = %q, want nothing", l, p)
		}
	}
}

// TestCodeCitesOnlyTheRepository walks every .go file of the repository
// (vendor and testdata aside) and names each comment line that cites an
// issue number or a path outside the repository.
func TestCodeCitesOnlyTheRepository(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != "." && (name == "vendor" || name == "testdata" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		files++
		for _, g := range f.Comments {
			for _, c := range g.List {
				first := fset.Position(c.Slash).Line
				for i, line := range strings.Split(c.Text, "\n") {
					if p := citeProblem(line); p != "" {
						t.Errorf("%s:%d: %s", path, first+i, p)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking the repository: %v", err)
	}
	if files < 100 {
		t.Fatalf("walked %d .go files, want the whole repository (100 or more)", files)
	}
}
