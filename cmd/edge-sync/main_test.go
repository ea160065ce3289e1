package main

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStaticBuild builds the binary with the Dockerfile's own go build
// line (docker itself cannot run in CI) and checks what the image relies
// on: a static executable, no interpreter and no shared library, so that
// it runs FROM scratch, and the version set by -ldflags.
func TestStaticBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary without cgo")
	}
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// RUN CGO_ENABLED=0 go build ... -o /out/edge-sync ./cmd/edge-sync \
	m := regexp.MustCompile(`(?s)RUN (CGO_ENABLED=0 go build .*?) \\\n\s*-o /out/edge-sync (\./cmd/edge-sync)`).FindSubmatch(df)
	if m == nil {
		t.Fatal("no CGO_ENABLED=0 go build line in the Dockerfile")
	}
	line := strings.ReplaceAll(string(m[1]), "${VERSION}", "v9.9.9-static")
	env, args := []string{}, strings.Fields(line)
	for len(args) > 0 && strings.Contains(args[0], "=") {
		env, args = append(env, args[0]), args[1:]
	}
	// -ldflags "..." is one argument.
	var argv []string
	for i := 0; i < len(args); i++ {
		if strings.HasPrefix(args[i], `"`) {
			j := i
			for !strings.HasSuffix(args[j], `"`) {
				j++
			}
			argv = append(argv, strings.Trim(strings.Join(args[i:j+1], " "), `"`))
			i = j
			continue
		}
		argv = append(argv, args[i])
	}
	bin := filepath.Join(t.TempDir(), "edge-sync")
	cmd := exec.Command(argv[0], append(argv[1:], "-o", bin, "./cmd/edge-sync")...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamic (program header %v): it would not run FROM scratch", p.Type)
		}
	}
	var out bytes.Buffer
	v := exec.Command(bin, "--version")
	v.Stdout = &out
	if err := v.Run(); err != nil || !strings.HasPrefix(out.String(), "edge-sync v9.9.9-static (go") {
		t.Errorf("--version of the image's binary: %q, %v", out.String(), err)
	}
}
