package soak

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/internal/hostile"
	"github.com/edge-sync/edge-sync/internal/testutil"
	"github.com/edge-sync/edge-sync/wire"
)

// memoryBound is the most a core's RSS may reach under hostileLoad.
const memoryBound = 256 << 20

// TestHostileMemoryBound runs a real core process under 100 hostile
// streams and 4 hostile connections at once (hostileLoad) and reads its
// peak RSS: it must stay under 256 MiB. Before frames were checked and
// allocated as they arrive, 60 such streams took a core from 22 to 1,045
// MiB and four such connections to 3.7 GiB.
func TestHostileMemoryBound(t *testing.T) {
	idle, peak := hostileMemory(t)
	t.Logf("core RSS: idle %d MiB, peak under 100 hostile streams and 4 hostile connections %d MiB (bound %d MiB)",
		idle>>20, peak>>20, memoryBound>>20)
	if peak >= memoryBound {
		t.Fatalf("the core's RSS peaked at %d MiB under hostile load, bound %d MiB", peak>>20, memoryBound>>20)
	}
}

// BenchmarkHostileMemory reports the core's peak RSS under hostileLoad
// beside the RSS of the same core idle, measured in the same run.
func BenchmarkHostileMemory(b *testing.B) {
	var idle, peak int64
	n := 0
	for b.Loop() {
		i, p := hostileMemory(b)
		idle, peak, n = idle+i, peak+p, n+1
	}
	idleMiB, peakMiB := float64(idle)/float64(n)/(1<<20), float64(peak)/float64(n)/(1<<20)
	b.ReportMetric(peakMiB, "peak-rss-mib")
	b.ReportMetric(idleMiB, "idle-rss-mib")
	b.ReportMetric(peakMiB/idleMiB, "peak-vs-idle")
}

// hostileMemory starts a core process, reads its idle RSS, runs
// hostileLoad against it and returns the idle RSS and the peak (VmHWM).
// Streams the core has not answered within 10 s are an error, after the
// peak is read.
func hostileMemory(tb testing.TB) (idle, peak int64) {
	tb.Helper()
	p := testutil.NewPKI(tb, "site-1")
	dir := tb.TempDir()
	addr := testutil.FreeUDPAddr(tb)
	c := startCore(tb, coreConfig(tb, p, dir, addr), "")
	defer c.kill()
	idle, _, err := c.memory()
	if err != nil {
		tb.Fatal(err)
	}
	// Three rounds, each closing what the one before opened: memory a
	// round frees is what the next one's buffers reuse, and reused memory
	// is zeroed, so it counts in RSS even where the bytes never came.
	var unanswered error
	for round := range 3 {
		var stop func()
		stop, unanswered = hostileLoad(tb, addr, p.ClientTLS(tb, "127.0.0.1"), round)
		if round < 2 {
			stop()
		} else {
			defer stop()
		}
	}
	// Sample for a while in case the core grows later (a sampling
	// interval, not synchronisation: VmHWM is the true peak).
	for range 20 {
		if _, _, err := c.memory(); err != nil {
			tb.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, peak, err = c.memory()
	if err != nil {
		tb.Fatal(err)
	}
	if unanswered != nil {
		tb.Errorf("the core did not answer as it should (peak RSS %d MiB): %v", peak>>20, unanswered)
	}
	return idle, peak
}

// hostileLoad opens 100 hostile streams on two connections (50 that open
// with a DATA frame declaring 16 MiB + 4080 B and send 64 KiB of it, 50
// that send a valid header and then such a frame) and 4 connections whose
// every stream sends a header and a DATA head and no body. It waits up to
// 10 s for the core to answer each stream as it should (ERROR to the
// first, RESUME_ANSWER to the others) and returns what it did not; stop
// closes the connections.
func hostileLoad(tb testing.TB, addr string, tlsConf *tls.Config, round int) (stop func(), unanswered error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var clients []*hostile.Client
	stop = func() {
		for _, c := range clients {
			c.Close()
		}
	}
	type attack struct {
		name   string
		run    func(c *hostile.Client, conn int) (*hostile.Attack, error)
		answer wire.FrameType
	}
	attacks := []attack{
		{"data-first", func(c *hostile.Client, conn int) (*hostile.Attack, error) {
			return hostile.DataFirst(ctx, c, conn, 50, 64<<10)
		}, wire.FrameError},
		{"partial-data", func(c *hostile.Client, conn int) (*hostile.Attack, error) {
			return hostile.PartialData(ctx, c, conn, 50, 64<<10)
		}, wire.FrameResumeAnswer},
	}
	for range 4 {
		attacks = append(attacks, attack{"headers-only", func(c *hostile.Client, conn int) (*hostile.Attack, error) {
			return hostile.HeadersOnly(ctx, c, conn, 63)
		}, wire.FrameResumeAnswer})
	}
	deadline := time.Now().Add(10 * time.Second)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for conn, at := range attacks {
		c, err := hostile.Dial(ctx, addr, tlsConf, 0)
		if err != nil {
			stop()
			tb.Fatal(err)
		}
		clients = append(clients, c)
		a, err := at.run(c, round*len(attacks)+conn)
		if err != nil {
			stop()
			tb.Fatalf("%s: %v", at.name, err)
		}
		for i, str := range a.Streams {
			wg.Go(func() {
				_ = str.SetReadDeadline(deadline)
				f, err := wire.ReadFrame(str, 0)
				if err == nil && f.Type() != at.answer {
					err = fmt.Errorf("answered %s, want %s", f.Type(), at.answer)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s stream %d: %w", at.name, i, err))
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		unanswered = fmt.Errorf("%d streams, e.g. %w", len(errs), errs[0])
	}
	return stop, unanswered
}
