// Package browsertest opens a page in a real headless Chromium for the
// tests of the pages edge-sync serves and writes (internal/statuspage, the
// demo's report): it collects the console's errors and exceptions, reads
// the DOM with JavaScript, waits for a condition in the page, and writes
// screenshots as test artifacts.
//
// # Basics
//
// Open starts Debian's chromium (or chromium-browser, google-chrome,
// found on PATH) headless with chromedp, and skips the test with a
// message saying how to install it when there is none; .ci/run installs
// it, so CI runs the tests. The browser stops when the test ends.
//
// Screenshots go to the directory $EDGESYNC_SCREENSHOTS names (relative
// to the repository's root), else to the test's temporary directory; the
// path is logged. docs/status-page.md gives the command that regenerates
// the README's images.
//
// # Caveats
//
// Imported by tests only, like internal/testutil; it brings chromedp,
// which no shipped package links.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/edge-sync/edge-sync/internal/testutil"
)

// ScreenshotsEnv names the directory screenshots are written to.
const ScreenshotsEnv = "EDGESYNC_SCREENSHOTS"

// Page is a page open in a headless Chromium.
type Page struct {
	tb  testing.TB
	ctx context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// browsers are the names Chromium goes by on PATH.
var browsers = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"}

// Open starts a headless Chromium with a 1280×900 window, opens url and
// waits for it to load. It skips tb when no Chromium is installed.
func Open(tb testing.TB, url string) *Page {
	tb.Helper()
	path := ""
	for _, name := range browsers {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		tb.Skipf("no Chromium on PATH (looked for %s): install Debian's chromium (apt-get install -y chromium) to run the browser tests, as .ci/run does", strings.Join(browsers, ", "))
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	p := &Page{tb: tb, ctx: ctx}
	// Console subscribes as it returns (starting the browser), so nothing
	// the page logs from its first load on is missed.
	msgs := chromedp.Console(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m)
			p.mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		cancel()
		cancelAlloc()
		<-done
	})
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		tb.Fatalf("open %s in Chromium: %v", url, err)
	}
	return p
}

// Eval runs a JavaScript expression in the page and returns its value.
func Eval[T any](p *Page, js string) T {
	p.tb.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		p.tb.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// WaitJS waits until the JavaScript expression js is true in the page,
// and fails tb naming what it waited for when it is not within d.
func (p *Page) WaitJS(d time.Duration, what, js string) {
	p.tb.Helper()
	var lastErr error
	ok := testutil.PollEvery(d, 100*time.Millisecond, func() bool {
		v, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](js))
		lastErr = err
		return err == nil && v
	})
	if !ok {
		p.tb.Fatalf("timed out after %v waiting for %s in the page (%s; last error %v)", d, what, js, lastErr)
	}
}

// NoConsoleErrors fails tb for every error and exception the page's
// console has shown so far; other messages are logged.
func (p *Page) NoConsoleErrors() {
	p.tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.console {
		if m.Type == chromedp.ConsoleError || m.IsException() {
			p.tb.Errorf("console %s at %s:%d: %s", m.Type, m.URL, m.Line, m.Text)
		} else {
			p.tb.Logf("console %s: %s", m.Type, m.Text)
		}
	}
}

// Screenshot writes a PNG of the whole page as name (e.g.
// "status-agent.png") into the screenshots directory and returns its
// path.
func (p *Page) Screenshot(name string) string {
	p.tb.Helper()
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.tb.Fatalf("screenshot: %v", err)
	}
	dir, err := screenshotDir(p.tb)
	if err != nil {
		p.tb.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.tb.Fatalf("write screenshot: %v", err)
	}
	p.tb.Logf("screenshot written to %s", path)
	return path
}

// screenshotDir is $EDGESYNC_SCREENSHOTS, made if needed (a relative path
// is relative to the repository's root, not to the package's directory
// the test runs in), else the test's temporary directory.
func screenshotDir(tb testing.TB) (string, error) {
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		return tb.TempDir(), nil
	}
	if !filepath.IsAbs(dir) {
		root, err := repoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("%s: %w", ScreenshotsEnv, err)
	}
	return dir, nil
}

// repoRoot is the nearest directory above the working directory that
// holds go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("no go.mod above the working directory: give " + ScreenshotsEnv + " as an absolute path")
		}
		dir = up
	}
}
