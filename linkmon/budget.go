package linkmon

import (
	"fmt"
	"math"
	"sync"
	"time"
)

// BudgetConfig limits active probing to a share of the link's capacity.
type BudgetConfig struct {
	// Fraction of the estimated capacity that probes may use over any
	// Window (0.02, i.e. 2 %).
	Fraction float64
	// Window is the sliding window the fraction applies to (1 min).
	Window time.Duration
	// FloorBps is the capacity assumed while none is known (128 kbit/s, the
	// bottom of the satellite range), so the first probe is small and
	// cannot flood a slow link.
	FloorBps float64
}

// DefaultBudgetConfig returns 2 % over any minute.
func DefaultBudgetConfig() BudgetConfig {
	return BudgetConfig{Fraction: 0.02, Window: time.Minute, FloorBps: 128e3}
}

// Validate reports the first bad field.
func (c BudgetConfig) Validate() error {
	switch {
	case !(c.Fraction > 0 && c.Fraction <= 1):
		return cfgErr("fraction", "%v must be in (0, 1]", c.Fraction)
	case c.Window <= 0:
		return cfgErr("window", "%v must be positive", c.Window)
	case !(c.FloorBps > 0) || math.IsInf(c.FloorBps, 0):
		return cfgErr("floor_bps", "%v must be a positive number", c.FloorBps)
	}
	return nil
}

// maxSpends bounds a budget's memory; past it nothing more is allowed until
// old spends leave the window.
const maxSpends = 1 << 16

type spend struct {
	at    time.Time
	bytes int64
}

// Budget is a sliding-window account of probe bytes. The sum of the bytes
// spent within any Window never exceeds Fraction × capacity × Window, for
// the capacity given at each spend, provided every Spend was allowed first
// (Take does both at once). Time never runs backwards for a budget: an
// earlier now is taken as the latest seen. Safe for concurrent use.
type Budget struct {
	cfg BudgetConfig

	mu     sync.Mutex
	spends []spend // oldest first
	sum    int64   // bytes in spends
	latest time.Time
}

// NewBudget returns an empty budget.
func NewBudget(cfg BudgetConfig) (*Budget, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new budget: %w", err)
	}
	return newBudget(cfg), nil
}

// newBudget returns an empty budget for a cfg that has been validated
// (the monitor's, checked by NewMonitor and Restart).
func newBudget(cfg BudgetConfig) *Budget { return &Budget{cfg: cfg} }

// Limit returns the bytes allowed per window at the given capacity (bit/s;
// 0 or less means unknown and uses FloorBps).
func (b *Budget) Limit(capacityBps float64) int64 {
	if !(capacityBps > 0) || math.IsInf(capacityBps, 0) {
		capacityBps = b.cfg.FloorBps
	}
	return int64(b.cfg.Fraction * capacityBps / 8 * b.cfg.Window.Seconds())
}

// advance moves the clock and drops spends that left the window.
func (b *Budget) advance(now time.Time) time.Time {
	if now.Before(b.latest) {
		now = b.latest
	}
	b.latest = now
	i := 0
	for i < len(b.spends) && now.Sub(b.spends[i].at) >= b.cfg.Window {
		b.sum -= b.spends[i].bytes
		i++
	}
	if i > 0 {
		b.spends = append(b.spends[:0], b.spends[i:]...)
	}
	return now
}

func (b *Budget) allow(bytes int, capacityBps float64) bool {
	return bytes >= 0 && len(b.spends) < maxSpends && b.sum+int64(bytes) <= b.Limit(capacityBps)
}

// Allow reports whether bytes more of probing at now fit the budget.
func (b *Budget) Allow(now time.Time, bytes int, capacityBps float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	return b.allow(bytes, capacityBps)
}

// Spend records bytes of probing sent at now.
func (b *Budget) Spend(now time.Time, bytes int) {
	if bytes <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.advance(now)
	b.spends = append(b.spends, spend{at: now, bytes: int64(bytes)})
	b.sum += int64(bytes)
}

// Take spends bytes at now if they fit, and reports whether they did.
func (b *Budget) Take(now time.Time, bytes int, capacityBps float64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now = b.advance(now)
	if !b.allow(bytes, capacityBps) {
		return false
	}
	if bytes > 0 {
		b.spends = append(b.spends, spend{at: now, bytes: int64(bytes)})
		b.sum += int64(bytes)
	}
	return true
}

// Spent returns the bytes spent within the window ending at now.
func (b *Budget) Spent(now time.Time) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(now)
	return b.sum
}

// Spacing returns how far apart probes of probeBytes must be, on average,
// to stay within the budget at the given capacity: the monitor stretches
// its probe interval to at least this.
func (b *Budget) Spacing(capacityBps float64, probeBytes int) time.Duration {
	limit := b.Limit(capacityBps)
	if limit <= 0 {
		return b.cfg.Window
	}
	return time.Duration(float64(b.cfg.Window) * float64(probeBytes) / float64(limit))
}

// Probe train sizing.
const (
	// ProbePacketSize is the size of one probe packet: it fits any path
	// that carries QUIC (1200-byte minimum datagram size).
	ProbePacketSize = 1200
	// MinTrainPackets is the shortest train worth measuring.
	MinTrainPackets = 5
	// TargetDispersion is the time a train should take to cross the
	// bottleneck: long enough that timer noise (tens of µs) stays small.
	TargetDispersion = 15 * time.Millisecond
	// MaxProbeBytes caps a train (reached above about 560 Mbit/s).
	MaxProbeBytes = 1 << 20
	// unknownCapacityProbe is the first train while no capacity is known:
	// 0.13 s at 1 Mbit/s, harmless; a faster link is found by the next
	// probe's larger train.
	unknownCapacityProbe = 16 << 10
)

// ProbeSize returns the bytes of one packet train for a link of the given
// capacity (bit/s; 0 if unknown): enough for TargetDispersion at that rate,
// in whole packets, at least MinTrainPackets and at most MaxProbeBytes.
// That is about 64 KiB at 35 Mbit/s (broadband), 1 MiB from about
// 560 Mbit/s up (so above 1 Gbit/s), 28 KiB at 15 Mbit/s and 6 KB (five
// packets, 48 ms) at 1 Mbit/s and below. The budget, not the size, keeps
// slow links cheap: see Budget.Spacing.
func ProbeSize(capacityBps float64) int {
	if !(capacityBps > 0) {
		return unknownCapacityProbe
	}
	want := capacityBps / 8 * TargetDispersion.Seconds()
	if want >= MaxProbeBytes {
		return MaxProbeBytes
	}
	packets := max(MinTrainPackets, int(math.Ceil(want/ProbePacketSize)))
	return min(MaxProbeBytes, packets*ProbePacketSize)
}
