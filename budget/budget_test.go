package budget

import (
	"context"
	"math"
	"net"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
	"github.com/edge-sync/edge-sync/internal/testutil"
)

// spendUntil counts packets of size n while p may still send, and returns
// the spend at the last packet p was allowed to send; bounded by max
// packets.
func spendUntil(t *testing.T, b *Budget, p edgesync.Priority, n, maxPackets int) int64 {
	t.Helper()
	for range maxPackets {
		if b.Decide(p) == Hold {
			return b.Status().Spent
		}
		b.Count(n)
	}
	t.Fatalf("%s was never held after %d packets of %d bytes", p, maxPackets, n)
	return 0
}

// TestNoPriorityPassesItsShare: each ordinary priority is held once the
// spend reaches its share of the allowance outside the reserve, in
// order, and critical spends the reserve to the whole allowance.
func TestNoPriorityPassesItsShare(t *testing.T) {
	cfg := Default(1_000_000, Period{Kind: Fixed, Length: time.Hour})
	b, err := Open(cfg, Options{Path: filepath.Join(t.TempDir(), "budget.json")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const pkt = 1200
	usable := float64(cfg.Allowance - cfg.Reserve)
	for _, p := range []edgesync.Priority{edgesync.Background, edgesync.Analytics, edgesync.Normal, edgesync.High} {
		stop := int64(cfg.Shares[p] * usable)
		got := spendUntil(t, b, p, pkt, 2000)
		if got < stop || got >= stop+pkt {
			t.Errorf("%s held at %d bytes spent; its stop is %d (one packet of slack)", p, got, stop)
		}
		for _, lower := range edgesync.Priorities()[p:] {
			if v := b.Decide(lower); v != Hold {
				t.Errorf("after %s's stop, %s may %s", p, lower, v)
			}
		}
		if v := b.Decide(edgesync.Critical); v != Send {
			t.Errorf("critical is told to %s at %d spent", v, got)
		}
	}
	got := spendUntil(t, b, edgesync.Critical, pkt, 2000)
	if got < cfg.Allowance || got >= cfg.Allowance+pkt {
		t.Errorf("critical held at %d bytes; the allowance is %d", got, cfg.Allowance)
	}
	st := b.Status()
	if st.Left != 0 || st.Priorities[edgesync.Critical].Verdict != Hold || st.Priorities[edgesync.Background].HeldSince == nil {
		t.Errorf("status after the allowance: %+v", st)
	}
}

// TestSummaryBandComesBeforeTheStop: a priority sends only summaries in
// the band below its stop.
func TestSummaryBandComesBeforeTheStop(t *testing.T) {
	cfg := Default(1_000_000, Period{Kind: Fixed, Length: time.Hour})
	b, err := Open(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop := int64(cfg.Shares[edgesync.Background] * float64(cfg.Allowance-cfg.Reserve))
	b.Count(int(stop - 60_000))
	if v := b.Decide(edgesync.Background); v != Send {
		t.Fatalf("10 KB below the band: %s, want send", v)
	}
	b.Count(20_000)
	if v := b.Decide(edgesync.Background); v != SummaryOnly {
		t.Fatalf("inside the band: %s, want summary_only", v)
	}
	if v := b.Decide(edgesync.Critical); v != Send {
		t.Fatalf("critical inside background's band: %s", v)
	}
	if !b.Economy() {
		t.Errorf("spent %d of %d, past economy %v, but Economy is false", b.Status().Spent, cfg.Allowance, cfg.Economy)
	}
}

// TestPerClassAllowance: a class with its own allowance holds a priority
// when the class's spend reaches the share of it, though the whole
// allowance has room.
func TestPerClassAllowance(t *testing.T) {
	class := edgesync.Satellite
	cfg := Default(10_000_000, Period{Kind: Fixed, Length: time.Hour})
	cfg.Classes[edgesync.Satellite] = 100_000
	b, err := Open(cfg, Options{Class: func() edgesync.LinkClass { return class }})
	if err != nil {
		t.Fatal(err)
	}
	got := spendUntil(t, b, edgesync.Background, 1000, 1000)
	if got > 50_000 {
		t.Errorf("background held at %d bytes on satellite; its share of the class's 100 kB is 47.5 kB", got)
	}
	class = edgesync.Fiber
	if v := b.Decide(edgesync.Background); v != Send {
		t.Errorf("on fiber, with 9.9 MB left, background is told to %s", v)
	}
}

// TestSpendSurvivesReopen: a budget reopened after a crash (no Close)
// counts at least what was sent and at most one persist step more; after
// a clean Close it counts exactly what was sent.
func TestSpendSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "budget.json")
	cfg := Default(100<<20, Period{Kind: Fixed, Length: time.Hour})
	cfg.PersistStep = 50_000
	b, err := Open(cfg, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	const sent = 1_234_567
	for i := 0; i < sent/1000; i++ {
		b.Count(1000)
	}
	b.Count(sent % 1000)
	// No Close: as after SIGKILL.
	b2, err := Open(cfg, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	got := b2.Status().Spent
	if got < sent || got > sent+cfg.PersistStep+1000 {
		t.Fatalf("after a crash the budget counts %d; sent %d, persist step %d", got, sent, cfg.PersistStep)
	}
	b2.Count(100)
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	b3, err := Open(cfg, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if s := b3.Status().Spent; s != got+100 {
		t.Fatalf("after a clean close the budget counts %d, want %d", s, got+100)
	}
}

// TestResetOnTime: a period of seconds renews at its end, to the
// nanosecond of the bubble's clock, and wakes whoever waits on Changed.
func TestResetOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Default(10_000, Period{Kind: Fixed, Length: 5 * time.Second})
		b, err := Open(cfg, Options{Path: filepath.Join(t.TempDir(), "budget.json")})
		if err != nil {
			t.Fatal(err)
		}
		end := b.Status().PeriodEnd
		b.Count(20_000)
		if b.Decide(edgesync.Critical) != Hold {
			t.Fatal("the spent allowance does not hold critical")
		}
		ch := b.Changed()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { b.Serve(ctx); close(done) }()
		<-ch
		if now := time.Now(); !now.Equal(end) {
			t.Errorf("renewed at %v, want the period's end %v", now, end)
		}
		st := b.Status()
		if st.Spent != 0 || !st.PeriodStart.Equal(end) || b.Decide(edgesync.Background) != Send {
			t.Errorf("after renewal: spent %d, start %v (want 0 and %v)", st.Spent, st.PeriodStart, end)
		}
		b2, err := Open(cfg, Options{Path: b.path})
		if err != nil {
			t.Fatal(err)
		}
		if s := b2.Status().Spent; s != 0 {
			t.Errorf("the renewed period reads back as %d spent", s)
		}
		cancel()
		<-done
	})
}

// TestConnCountsWhatLeaves: every datagram a Conn sends is counted, as
// the bytes the socket took.
func TestConnCountsWhatLeaves(t *testing.T) {
	b, err := Open(Default(1<<30, Period{Kind: Month}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	recv, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := Wrap(pc, b)
	defer c.Close()
	var want int64
	for i := range 50 {
		n, err := c.WriteTo(testutil.RandomBytes(uint64(i), 100+i*20), recv.LocalAddr())
		if err != nil {
			t.Fatal(err)
		}
		want += int64(n)
	}
	if got := b.Status().Spent; got != want {
		t.Fatalf("counted %d bytes, sent %d", got, want)
	}
}

// TestSetAllowanceSurvivesRestartUntilTheConfigChanges: an allowance set
// at run time is kept across a restart with the same config, and a config
// whose allowance was edited since wins.
func TestSetAllowanceSurvivesRestartUntilTheConfigChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "budget.json")
	cfg := Default(1_000_000, Period{Kind: Month})
	b, err := Open(cfg, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetAllowance(3_000_000); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = Open(cfg, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if a := b.Status().Allowance; a != 3_000_000 {
		t.Fatalf("after a restart with the same config the allowance is %d, want the 3000000 set", a)
	}
	edited := Default(2_000_000, Period{Kind: Month})
	b, err = Open(edited, Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if a := b.Status().Allowance; a != 2_000_000 {
		t.Fatalf("after the config's allowance changed it is %d, want the config's 2000000", a)
	}
	if err := b.SetAllowance(-1); err == nil {
		t.Fatal("a negative allowance was taken")
	}
}

// TestProbeCapFollowsTheAllowance: the probe budget's capacity is the
// allowance's average rate, and shrinks with what is left past Economy.
func TestProbeCapFollowsTheAllowance(t *testing.T) {
	cfg := Default(3600_000, Period{Kind: Fixed, Length: time.Hour}) // 1000 B/s: 8000 bit/s
	b, err := Open(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.ProbeCapBps(); got != 8000 {
		t.Fatalf("probe cap %v bit/s, want the allowance's 8000", got)
	}
	b.Count(int(0.8 * 3600_000)) // past economy, 20 % left
	if got := b.ProbeCapBps(); math.Abs(got-1600) > 1 {
		t.Fatalf("probe cap %v bit/s with 20 %% left, want 1600", got)
	}
	b.Count(3600_000)
	if got := b.ProbeCapBps(); math.Abs(got-400) > 1 {
		t.Fatalf("probe cap %v bit/s with nothing left, want the floor of 5 %%: 400", got)
	}
}
