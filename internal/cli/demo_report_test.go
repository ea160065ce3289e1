package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/browsertest"
)

// TestDemoReportInBrowser runs the demo, shortened, with --report and
// opens the report in a headless Chromium: the verified summary, the true
// link beside the measured one, each step of the walk marked, the class
// bands, the latency of every priority, no console error, and nothing
// that is not in the file.
func TestDemoReportInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo for 10 s")
	}
	path := filepath.Join(t.TempDir(), "demo.html")
	// Two seconds a step are enough for the checks below; the README's
	// image is made with EDGESYNC_DEMO_DURATION=45s, steps long enough
	// for each class to be judged (docs/status-page.md).
	duration := "10s"
	if d := os.Getenv("EDGESYNC_DEMO_DURATION"); d != "" {
		duration = d
	}
	out, _, err := run(t, "demo", "--duration", duration, "--large", "1MiB", "--report", path)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if !strings.Contains(out, "report written to "+path) {
		t.Errorf("demo does not say where the report is:\n%s", out)
	}
	page := browsertest.Open(t, "file://"+path)
	if v := browsertest.Eval[string](page, `document.querySelector('[data-verified]')?.dataset.verified ?? ""`); v != "ok" {
		t.Errorf("report's verdict: %q, want ok", v)
	}
	for _, s := range []string{"bandwidth", "true-bandwidth", "rtt", "true-rtt", "loss", "true-loss", "queue-normal"} {
		if n := browsertest.Eval[int](page, fmt.Sprintf(`Number(document.querySelector('[data-series=%q]')?.dataset.points ?? -1)`, s)); n <= 0 {
			t.Errorf("series %s: %d points drawn, want some", s, n)
		}
	}
	steps := browsertest.Eval[string](page, `[...new Set([...document.querySelectorAll('[data-step]')].map(e => e.dataset.step))].join(",")`)
	if want := "fiber,lte,satellite-geo,outage,broadband,satellite-only"; steps != want {
		t.Errorf("steps marked: %s, want %s", steps, want)
	}
	if n := browsertest.Eval[int](page, `new Set([...document.querySelectorAll('rect[data-class]')].map(e => e.dataset.class)).size`); n < 2 {
		t.Errorf("%d classes among the bands over a five-step walk", n)
	}
	for _, p := range edgesync.Priorities() {
		if !browsertest.Eval[bool](page, fmt.Sprintf(`document.querySelector('[data-latency=%q]') !== null`, p.String())) {
			t.Errorf("no latency bar for %s", p)
		}
	}
	// Self-contained: no script, nothing loaded from elsewhere.
	if n := browsertest.Eval[int](page, `document.querySelectorAll('script, [src], link[rel=stylesheet]').length`); n != 0 {
		t.Errorf("report has %d scripts or external resources", n)
	}
	page.NoConsoleErrors()
	page.Screenshot("demo-report.png")
}

// TestDemoReportUnwritable: a --report path that cannot be written fails
// at once, before the walk, naming the flag.
func TestDemoReportUnwritable(t *testing.T) {
	_, _, err := run(t, "demo", "--report", filepath.Join(t.TempDir(), "no-such-dir", "r.html"))
	var ue *UsageError
	if err == nil || !strings.Contains(err.Error(), "--report") || !errors.As(err, &ue) {
		t.Fatalf("demo --report into a missing directory: %v; want a usage error naming --report", err)
	}
}
