package linksim

import (
	"math/rand/v2"
	"sync"
	"time"
)

// dynamics is the time-varying state one link shares between its two
// directions: outage windows and LEO handovers. Both are anchored at the
// moment the profile was set and advanced lazily as time passes.
type dynamics struct {
	mu  sync.Mutex
	rng *rand.Rand

	epoch time.Time

	out     *Outages
	down    bool
	winEnd  time.Time
	winDone int // windows completed, for tests and stats

	ho       *Handover
	hoPeriod int64
	hoDelay  time.Duration
	hoSpike  time.Duration
}

func newDynamics(seed uint64) *dynamics {
	return &dynamics{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// reset anchors p's outages and handovers at now.
func (d *dynamics) reset(p Profile, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.epoch = now
	d.out, d.ho = nil, nil
	d.down = false
	if p.Outages != nil {
		o := *p.Outages
		d.out = &o
		d.winEnd = now.Add(d.window(o.Up))
	}
	if p.Handover != nil {
		h := *p.Handover
		d.ho = &h
		d.hoPeriod = 0
		d.hoDelay = d.uniform(h.DelayMin, h.DelayMax)
		d.hoSpike = 0
	}
}

// window returns the length of the next window whose nominal length is mean.
func (d *dynamics) window(mean time.Duration) time.Duration {
	if !d.out.Random {
		return mean
	}
	w := time.Duration(d.rng.ExpFloat64() * float64(mean))
	return max(w, time.Millisecond)
}

func (d *dynamics) uniform(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(d.rng.Int64N(int64(hi-lo)+1))
}

// isDown reports whether the link is in an outage at t. Times before the
// current window get the current window's answer.
func (d *dynamics) isDown(t time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.out == nil {
		return false
	}
	if !d.out.Random && t.Sub(d.winEnd) > time.Hour {
		// Skip whole periods at once after a long idle gap.
		period := d.out.Up + d.out.Down
		n := t.Sub(d.winEnd) / period
		d.winEnd = d.winEnd.Add(n * period)
	}
	for i := 0; !t.Before(d.winEnd) && i < 1_000_000; i++ {
		d.down = !d.down
		d.winDone++
		if d.down {
			d.winEnd = d.winEnd.Add(d.window(d.out.Down))
		} else {
			d.winEnd = d.winEnd.Add(d.window(d.out.Up))
		}
	}
	return d.down
}

// handover returns the base one-way delay, the extra spike delay and the
// burst loss probability at t. ok is false when the profile has no
// handovers.
func (d *dynamics) handover(t time.Time) (delay, spike time.Duration, burst float64, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.ho
	if h == nil {
		return 0, 0, 0, false
	}
	since := t.Sub(d.epoch)
	if since < 0 {
		since = 0
	}
	k := int64(since / h.Every)
	if k != d.hoPeriod {
		d.hoPeriod = k
		d.hoDelay = d.uniform(h.DelayMin, h.DelayMax)
		d.hoSpike = d.uniform(h.SpikeMin, h.SpikeMax)
	}
	if k == 0 {
		// Setting the profile is not a handover.
		return d.hoDelay, 0, 0, true
	}
	into := since - time.Duration(k)*h.Every
	if into < h.SpikeFor {
		spike = d.hoSpike
	}
	if into < h.BurstFor {
		burst = h.BurstLoss
	}
	return d.hoDelay, spike, burst, true
}
