package linkmon

import (
	"fmt"
	"math"
	"time"
)

// ClassifierConfig holds the thresholds and hysteresis of the classifier.
// The defaults are those of docs/design.md#link-classes; every field is
// configurable. Field names in errors are the snake_case names the config
// file uses.
type ClassifierConfig struct {
	// FiberMinBps: fiber needs a median bandwidth above this (100 Mbit/s).
	FiberMinBps float64
	// FiberMaxRTT: fiber needs a median RTT below this (10 ms).
	FiberMaxRTT time.Duration
	// BroadbandMinBps: broadband needs at least this (10 Mbit/s).
	BroadbandMinBps float64
	// BroadbandMaxRTT: broadband needs an RTT below this (50 ms).
	BroadbandMaxRTT time.Duration
	// MobileMinBps: mobile needs at least this; below it is satellite (1 Mbit/s).
	MobileMinBps float64
	// MobileMaxRTT: mobile needs an RTT below this (200 ms).
	MobileMaxRTT time.Duration
	// SatelliteMinRTT: an RTT above this is satellite (500 ms). RTTs between
	// MobileMaxRTT and SatelliteMinRTT go to the nearer row (see Classifier).
	SatelliteMinRTT time.Duration
	// IntermittentLoss: a mean loss above this over LossWindow is
	// intermittent (0.20).
	IntermittentLoss float64
	// MaxMissed: more than this many consecutive stale samples is
	// intermittent (2).
	MaxMissed int
	// MinOutage: the missed samples must also span at least this long since
	// the last answered one (1.5 s), so that a Starlink handover (about 1 s
	// of heavy loss) cannot produce an outage from three quick misses.
	MinOutage time.Duration
	// MinSamples: samples needed before any class is given, and
	// consecutive samples a new class must hold before it replaces the
	// current one (3).
	MinSamples int
	// Hysteresis: how far past a threshold a figure must be before the
	// class changes, as a fraction of the threshold (0.20; the config
	// file's hysteresis_percent).
	Hysteresis float64
	// Window: samples older than this take no part in the medians (30 s).
	Window time.Duration
	// MedianSamples: the medians are over at most this many of the most
	// recent samples within Window that carry the figure (9). Nine light
	// samples at 4/s span about 2 s: a step change moves the median after
	// five new samples, a 1 s spike (four samples) does not.
	MedianSamples int
	// LossWindow: loss is averaged over this span (20 s), longer than a
	// Starlink handover period (15 s), so that one loss burst is diluted.
	LossWindow time.Duration
}

// DefaultClassifierConfig returns the thresholds of
// docs/design.md#link-classes.
func DefaultClassifierConfig() ClassifierConfig {
	return ClassifierConfig{
		FiberMinBps:      100e6,
		FiberMaxRTT:      10 * time.Millisecond,
		BroadbandMinBps:  10e6,
		BroadbandMaxRTT:  50 * time.Millisecond,
		MobileMinBps:     1e6,
		MobileMaxRTT:     200 * time.Millisecond,
		SatelliteMinRTT:  500 * time.Millisecond,
		IntermittentLoss: 0.20,
		MaxMissed:        2,
		MinOutage:        1500 * time.Millisecond,
		MinSamples:       3,
		Hysteresis:       0.20,
		Window:           30 * time.Second,
		MedianSamples:    9,
		LossWindow:       20 * time.Second,
	}
}

func cfgErr(field string, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}

// Validate reports the first bad field, by its config name.
func (c ClassifierConfig) Validate() error {
	pos := func(v float64) bool { return v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) }
	switch {
	case !pos(c.MobileMinBps):
		return cfgErr("mobile_min_bps", "%v must be a positive number", c.MobileMinBps)
	case !pos(c.BroadbandMinBps) || c.BroadbandMinBps <= c.MobileMinBps:
		return cfgErr("broadband_min_bps", "%v must be above mobile_min_bps (%v)", c.BroadbandMinBps, c.MobileMinBps)
	case !pos(c.FiberMinBps) || c.FiberMinBps <= c.BroadbandMinBps:
		return cfgErr("fiber_min_bps", "%v must be above broadband_min_bps (%v)", c.FiberMinBps, c.BroadbandMinBps)
	case c.FiberMaxRTT <= 0:
		return cfgErr("fiber_max_rtt", "%v must be positive", c.FiberMaxRTT)
	case c.BroadbandMaxRTT <= c.FiberMaxRTT:
		return cfgErr("broadband_max_rtt", "%v must be above fiber_max_rtt (%v)", c.BroadbandMaxRTT, c.FiberMaxRTT)
	case c.MobileMaxRTT <= c.BroadbandMaxRTT:
		return cfgErr("mobile_max_rtt", "%v must be above broadband_max_rtt (%v)", c.MobileMaxRTT, c.BroadbandMaxRTT)
	case c.SatelliteMinRTT < c.MobileMaxRTT:
		return cfgErr("satellite_min_rtt", "%v must be at least mobile_max_rtt (%v)", c.SatelliteMinRTT, c.MobileMaxRTT)
	case !(c.IntermittentLoss > 0 && c.IntermittentLoss < 1):
		return cfgErr("intermittent_loss", "%v must be between 0 and 1 (exclusive)", c.IntermittentLoss)
	case c.MaxMissed < 1:
		return cfgErr("max_missed", "%d must be at least 1", c.MaxMissed)
	case c.MinOutage < 0:
		return cfgErr("min_outage", "%v must not be negative", c.MinOutage)
	case c.MinSamples < 1:
		return cfgErr("min_samples", "%d must be at least 1", c.MinSamples)
	case !(c.Hysteresis >= 0 && c.Hysteresis < 1):
		return cfgErr("hysteresis_percent", "%g%% must be in 0..100", c.Hysteresis*100)
	case c.Window <= 0:
		return cfgErr("window", "%v must be positive", c.Window)
	case c.MedianSamples < 1:
		return cfgErr("median_samples", "%d must be at least 1", c.MedianSamples)
	case c.LossWindow <= 0:
		return cfgErr("loss_window", "%v must be positive", c.LossWindow)
	}
	// With a margin, adjacent bands must not overlap: a lower threshold
	// raised by h must stay below the next one lowered by h.
	h := c.Hysteresis
	if c.MobileMinBps*(1+h) >= c.BroadbandMinBps*(1-h) || c.BroadbandMinBps*(1+h) >= c.FiberMinBps*(1-h) {
		return cfgErr("hysteresis_percent", "%g%% makes the bandwidth bands overlap", h*100)
	}
	if float64(c.FiberMaxRTT)*(1+h) >= float64(c.BroadbandMaxRTT)*(1-h) ||
		float64(c.BroadbandMaxRTT)*(1+h) >= float64(c.mobileSatelliteSplit())*(1-h) {
		return cfgErr("hysteresis_percent", "%g%% makes the RTT bands overlap", h*100)
	}
	return nil
}

// mobileSatelliteSplit is the RTT that divides the gap between mobile's
// maximum and satellite's minimum: their geometric mean, √(200·500) ≈ 316 ms
// by default. Nearness is measured as a ratio because the RTT rows grow
// geometrically (10, 50, 200, 500 ms).
func (c ClassifierConfig) mobileSatelliteSplit() time.Duration {
	return time.Duration(math.Sqrt(float64(c.MobileMaxRTT) * float64(c.SatelliteMinRTT)))
}
