package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/linksim"
)

// waitOutput waits until re matches the output and returns the match.
func waitOutput(t *testing.T, out *testutil.Buffer, re *regexp.Regexp, what string) []string {
	t.Helper()
	// Polling output: a buffer announces nothing.
	var m []string
	if !testutil.Poll(5*time.Second, func() bool {
		m = re.FindStringSubmatch(out.String())
		return m != nil
	}) {
		t.Fatalf("no %s in the output after 5 s:\n%s", what, out.String())
	}
	return m
}

// verifyNoLeaks checks, after every other cleanup of t, that no goroutine
// started during the test is left.
func verifyNoLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// echoServer answers every UDP datagram with itself until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return c.LocalAddr().String()
}

// startLinksim runs the command until the returned cancel is called, and
// returns the relay's address.
func startLinksim(t *testing.T, out *testutil.Buffer, args ...string) (addr string, stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, append([]string{"linksim"}, args...), Env{Stdout: out}) }()
	m := waitOutput(t, out, regexp.MustCompile(`relaying (\S+) ->`), "start line")
	return m[1], func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("linksim did not return 5 s after its context was cancelled")
			return nil
		}
	}
}

func TestLinksimRelaysAndPrintsCounters(t *testing.T) {
	verifyNoLeaks(t)
	target := echoServer(t)
	var out testutil.Buffer
	addr, stop := startLinksim(t, &out, "--listen", "127.0.0.1:0", "--target", target, "--profile", "dsl", "--interval", "50ms")

	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The dsl profile loses 0.5 % each way: try a few times, each ping
	// numbered so that a late echo of an earlier one is not timed.
	var rtt time.Duration
	buf := make([]byte, 16)
	for try := 0; ; try++ {
		if try == 10 {
			t.Fatal("no echo through linksim after 10 pings, 1 s apart")
		}
		ping := fmt.Sprintf("ping %d", try)
		sent := time.Now()
		if _, err := c.Write([]byte(ping)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		n, err := c.Read(buf)
		if err == nil && string(buf[:n]) == ping {
			rtt = time.Since(sent)
			break
		}
		t.Logf("ping %d: %q, %v", try, buf[:n], err)
	}
	p, _ := linksim.ProfileByName("dsl")
	if want := p.Up.Delay + p.Down.Delay; rtt < want {
		t.Errorf("echo came back after %v, faster than the dsl profile's %v", rtt, want)
	}
	waitOutput(t, &out, regexp.MustCompile(`dsl clients 1 \| up [1-9]\d* pkt [1-9]\d* B .* \| down [1-9]\d* pkt [1-9]\d* B`), "counters line showing the echo")
	if err := stop(); err != nil {
		t.Errorf("Run after cancel: %v, want nil", err)
	}
}

func TestLinksimSchedule(t *testing.T) {
	verifyNoLeaks(t)
	target := echoServer(t)
	file := filepath.Join(t.TempDir(), "day.txt")
	if err := os.WriteFile(file, []byte("# test day\n200ms fiber\n200ms very-bad\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out testutil.Buffer
	_, stop := startLinksim(t, &out, "--listen", "127.0.0.1:0", "--target", target, "--schedule", file, "--loop", "--interval", "50ms")
	waitOutput(t, &out, regexp.MustCompile(`very-bad clients`), "very-bad step")
	waitOutput(t, &out, regexp.MustCompile(`very-bad clients[^\n]*\n(?:.*\n)*?[^\n]*fiber clients`), "the loop back to fiber")
	if err := stop(); err != nil {
		t.Errorf("Run after cancel: %v, want nil", err)
	}
}

func TestLinksimBadFlags(t *testing.T) {
	dir := t.TempDir()
	badSched := filepath.Join(dir, "bad.txt")
	if err := os.WriteFile(badSched, []byte("10s fiber\n10 fiber\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
	}{
		{"no target", []string{"--profile", "fiber"}},
		{"no profile", []string{"--target", "127.0.0.1:9"}},
		{"both", []string{"--target", "127.0.0.1:9", "--profile", "fiber", "--schedule", badSched}},
		{"unknown profile", []string{"--target", "127.0.0.1:9", "--profile", "tin-can"}},
		{"loop without schedule", []string{"--target", "127.0.0.1:9", "--profile", "fiber", "--loop"}},
		{"zero interval", []string{"--target", "127.0.0.1:9", "--profile", "fiber", "--interval", "0s"}},
		{"extra argument", []string{"--target", "127.0.0.1:9", "--profile", "fiber", "now"}},
		{"unknown flag", []string{"--rate", "5"}},
	} {
		err := Run(context.Background(), append([]string{"linksim"}, c.args...), Env{})
		if !errors.As(err, new(*UsageError)) {
			t.Errorf("%s: %v, want a usage error", c.name, err)
		}
	}
	err := Run(context.Background(), []string{"linksim", "--target", "127.0.0.1:9", "--schedule", badSched}, Env{})
	var se *linksim.ScheduleError
	if !errors.As(err, &se) || se.Line != 2 {
		t.Errorf("bad schedule file: %v, want a ScheduleError for line 2", err)
	}
	err = Run(context.Background(), []string{"linksim", "--target", "127.0.0.1:9", "--schedule", filepath.Join(dir, "missing")}, Env{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing schedule file: %v, want os.ErrNotExist", err)
	}
}

func TestLinksimHelpListsProfiles(t *testing.T) {
	var out testutil.Buffer
	err := Run(context.Background(), []string{"linksim", "--help"}, Env{Stdout: &out})
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v, want flag.ErrHelp", err)
	}
	for _, p := range linksim.Profiles() {
		if !strings.Contains(out.String(), p.Name) || !strings.Contains(out.String(), p.Summary) {
			t.Errorf("--help does not list %s with its figures", p.Name)
		}
	}
}
