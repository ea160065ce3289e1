package linkmon

import (
	"errors"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func mustBudget(t interface {
	Helper()
	Fatalf(string, ...any)
}, cfg BudgetConfig) *Budget {
	t.Helper()
	b, err := NewBudget(cfg)
	if err != nil {
		t.Fatalf("NewBudget: %v", err)
	}
	return b
}

func TestBudgetBasics(t *testing.T) {
	b := mustBudget(t, DefaultBudgetConfig())
	// 2 % of 10 Mbit/s over 60 s = 1.5 MB.
	if got := b.Limit(10e6); got != 1_500_000 {
		t.Fatalf("limit at 10 Mbit/s = %d, want 1500000", got)
	}
	if got := b.Limit(0); got != 19_200 {
		t.Fatalf("limit with unknown capacity = %d, want the floor's 19200", got)
	}
	if !b.Take(t0, 1_000_000, 10e6) || b.Take(t0.Add(time.Second), 600_000, 10e6) {
		t.Fatalf("first 1 MB must fit, 0.6 MB more must not")
	}
	if !b.Allow(t0.Add(time.Second), 500_000, 10e6) {
		t.Fatalf("exactly the remaining 0.5 MB must fit")
	}
	// The first spend leaves the window exactly a minute later.
	if b.Allow(t0.Add(time.Minute-time.Nanosecond), 600_000, 10e6) || !b.Allow(t0.Add(time.Minute), 600_000, 10e6) {
		t.Fatalf("sliding window edge wrong")
	}
	// Time running backwards is clamped: the spend is not forgotten.
	b.Spend(t0, 100)
	if got := b.Spent(t0.Add(time.Minute)); got != 100 {
		t.Fatalf("spent after a backwards spend = %d, want 100", got)
	}
	if d := b.Spacing(1e6, 6000); d != 2400*time.Millisecond {
		t.Fatalf("spacing for 6 KB trains at 1 Mbit/s = %v, want 2.4s", d)
	}
}

// TestBudgetNeverExceeds: whatever the pattern of attempts, the bytes spent
// within any sliding window never exceed the fraction of the capacity in
// force at the spend that closes the window.
func TestBudgetNeverExceeds(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cfg := DefaultBudgetConfig()
		cfg.Fraction = rapid.Float64Range(0.001, 0.1).Draw(rt, "fraction")
		b := mustBudget(rt, cfg)
		type ev struct {
			at    time.Time
			bytes int
			limit int64
		}
		var spent []ev
		now := t0
		n := rapid.IntRange(1, 300).Draw(rt, "n")
		for i := range n {
			now = now.Add(time.Duration(rapid.Int64Range(0, int64(20*time.Second)).Draw(rt, "dt")))
			capBps := rapid.SampledFrom([]float64{0, 1e5, 1e6, 1e7, 1e8, 1e9}).Draw(rt, "cap")
			bytes := rapid.IntRange(0, 2<<20).Draw(rt, "bytes")
			var ok bool
			if i%2 == 0 {
				ok = b.Take(now, bytes, capBps)
			} else if ok = b.Allow(now, bytes, capBps); ok {
				b.Spend(now, bytes)
			}
			if ok {
				spent = append(spent, ev{now, bytes, b.Limit(capBps)})
			}
		}
		for i, e := range spent {
			var sum int64
			for _, f := range spent[:i+1] {
				if e.at.Sub(f.at) < cfg.Window {
					sum += int64(f.bytes)
				}
			}
			if sum > e.limit {
				rt.Fatalf("window ending at spend %d holds %d bytes > limit %d", i, sum, e.limit)
			}
		}
	})
}

// TestBudgetSteadyTrainsUse2Percent: a prober that probes whenever allowed
// uses close to, never above, 2 % of each minute.
func TestBudgetSteadyTrainsUse2Percent(t *testing.T) {
	b := mustBudget(t, DefaultBudgetConfig())
	const capBps = 1e6
	size := ProbeSize(capBps)
	var total int
	now := t0
	for range 10 * 60 * 10 { // 10 minutes, an attempt every 100 ms
		now = now.Add(100 * time.Millisecond)
		if b.Take(now, size, capBps) {
			total += size
		}
	}
	share := float64(total) * 8 / (capBps * 600)
	if share > 0.02 || share < 0.018 {
		t.Fatalf("probes used %.4f of the link over 10 minutes, want just under 0.02", share)
	}
}

func TestBudgetConfigValidate(t *testing.T) {
	for field, mut := range map[string]func(*BudgetConfig){
		"fraction":  func(c *BudgetConfig) { c.Fraction = 0 },
		"window":    func(c *BudgetConfig) { c.Window = 0 },
		"floor_bps": func(c *BudgetConfig) { c.FloorBps = -1 },
	} {
		c := DefaultBudgetConfig()
		mut(&c)
		if _, err := NewBudget(c); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
}

func TestProbeSize(t *testing.T) {
	cases := []struct {
		bps  float64
		want int
	}{
		{0, 16 << 10},
		{1e5, 5 * ProbePacketSize},
		{1e6, 5 * ProbePacketSize},
		{15e6, 24 * ProbePacketSize},
		{1e9, 1 << 20},
		{10e9, 1 << 20},
	}
	for _, c := range cases {
		if got := ProbeSize(c.bps); got != c.want {
			t.Errorf("ProbeSize(%s) = %d, want %d", FormatBps(c.bps), got, c.want)
		}
	}
	if got := ProbeSize(35e6); got < 60<<10 || got > 68<<10 {
		t.Errorf("ProbeSize(35 Mbit/s) = %d, want about 64 KiB", got)
	}
	prev := 0
	for bps := 1e4; bps < 1e11; bps *= 1.1 {
		s := ProbeSize(bps)
		if s < prev {
			t.Fatalf("ProbeSize not monotonic at %s", FormatBps(bps))
		}
		// Dispersion at least TargetDispersion wherever the cap allows.
		if s < MaxProbeBytes && float64(s)*8/bps < TargetDispersion.Seconds() {
			t.Fatalf("train of %d bytes crosses %s in under %v", s, FormatBps(bps), TargetDispersion)
		}
		prev = s
	}
}
