package config

import (
	"encoding/json"
	"math"
	"strings"
	"time"

	"github.com/edge-sync/edge-sync/internal/units"
	"github.com/edge-sync/edge-sync/linkmon"
)

// Monitor configures an endpoint's link monitor. It is linkmon's Config
// (one set of fields and defaults, in the code's units: bit/s, durations,
// fractions); the config file writes bandwidths in Mbit/s and shares in
// percent, converted once when it is read (rawMonitor.apply). Settings the
// file does not have (trains per probe, sample timeout, budget window and
// floor, min outage, median samples, history length) keep linkmon's
// defaults. In JSON (transport.config) it shows in the file's units.
type Monitor linkmon.Config

// The file's units.
const (
	bpsPerMbps = 1e6 // thresholds.*_mbps
	percent    = 100 // hysteresis_percent, probe_budget_percent, thresholds.intermittent_loss_percent
)

// shown converts v from the code's unit to the file's (per is how many
// file units make one code unit), rounded to nine decimals so that it
// shows what the file said (0.57 × 100 is 56.99999999999999 in floating
// point).
func shown(v, per float64) float64 { return math.Round(v*per*1e9) / 1e9 }

// DefaultMonitor returns the monitor's defaults: linkmon.Default.
func DefaultMonitor() Monitor { return Monitor(linkmon.Default()) }

func (m Monitor) validate(l *errorList, p string) {
	before := len(l.errs)
	c := m.Classifier
	pos := func(name string, d time.Duration) {
		if d <= 0 {
			l.addf(p+name, "must be positive, got %s", units.FormatDuration(d))
		}
	}
	pos("probe_interval", m.ProbeInterval)
	pos("sample_interval", m.SampleInterval)
	pos("window", c.Window)
	pos("loss_window", c.LossWindow)
	pos("probe_timeout", m.ProbeTimeout)
	pos("idle_after", m.IdleAfter)
	pos("idle_sample_interval", m.IdleSampleInterval)
	pos("idle_probe_interval", m.IdleProbeInterval)
	if m.SampleInterval > m.ProbeInterval {
		l.addf(p+"sample_interval", "must not be longer than probe_interval (%s), got %s", units.FormatDuration(m.ProbeInterval), units.FormatDuration(m.SampleInterval))
	}
	if c.MinSamples < 1 || c.MinSamples > 100 {
		l.addf(p+"min_samples", "must be 1-100, got %d", c.MinSamples)
	}
	if c.Hysteresis < 0 || c.Hysteresis >= 1 {
		l.addf(p+"hysteresis_percent", "must be 0-99, got %g", shown(c.Hysteresis, percent))
	}
	if m.Budget.Fraction <= 0 || m.Budget.Fraction > 0.5 {
		l.addf(p+"probe_budget_percent", "must be above 0 and at most 50, got %g", shown(m.Budget.Fraction, percent))
	}
	tp := p + "thresholds."
	if !(c.FiberMinBps > c.BroadbandMinBps && c.BroadbandMinBps > c.MobileMinBps && c.MobileMinBps > 0) {
		l.addf(tp+"fiber_min_mbps", "bandwidth thresholds must fall: fiber %g > broadband %g > mobile %g > 0 Mbit/s",
			shown(c.FiberMinBps, 1/bpsPerMbps), shown(c.BroadbandMinBps, 1/bpsPerMbps), shown(c.MobileMinBps, 1/bpsPerMbps))
	}
	if !(c.FiberMaxRTT < c.BroadbandMaxRTT && c.BroadbandMaxRTT < c.MobileMaxRTT && c.MobileMaxRTT < c.SatelliteMinRTT && c.FiberMaxRTT > 0) {
		l.addf(tp+"fiber_max_rtt", "RTT thresholds must rise: 0 < fiber %s < broadband %s < mobile %s < satellite %s",
			c.FiberMaxRTT, c.BroadbandMaxRTT, c.MobileMaxRTT, c.SatelliteMinRTT)
	}
	if c.IntermittentLoss <= 0 || c.IntermittentLoss > 1 {
		l.addf(tp+"intermittent_loss_percent", "must be above 0 and at most 100, got %g", shown(c.IntermittentLoss, percent))
	}
	if c.MaxMissed < 1 {
		l.addf(tp+"max_missed", "must be at least 1, got %d", c.MaxMissed)
	}
	if len(l.errs) > before {
		return
	}
	// Each field is in range; the monitor also checks how they combine
	// (hysteresis bands that overlap, a window too short for min_samples,
	// active and passive both off), so that the agent refuses nothing this
	// accepted.
	if err := linkmon.Config(m).Validate(); err != nil {
		l.add(strings.TrimSuffix(p, "."), err)
	}
}

// monitorJSON is a Monitor in JSON: the fields of the file's monitor
// block in its units (Mbit/s and percent; the probe budget a fraction),
// durations in nanoseconds.
type monitorJSON struct {
	ProbeInterval     time.Duration `json:"probe_interval_ns"`
	SampleInterval    time.Duration `json:"sample_interval_ns"`
	Window            time.Duration `json:"window_ns"`
	LossWindow        time.Duration `json:"loss_window_ns"`
	MinSamples        int           `json:"min_samples"`
	HysteresisPercent float64       `json:"hysteresis_percent"`
	ProbeTimeout      time.Duration `json:"probe_timeout_ns"`
	ProbeBudget       float64       `json:"probe_budget"`
	Active            bool          `json:"active"`
	Passive           bool          `json:"passive"`
	IdleAfter         time.Duration `json:"idle_after_ns"`
	IdleSample        time.Duration `json:"idle_sample_interval_ns"`
	IdleProbe         time.Duration `json:"idle_probe_interval_ns"`
	Thresholds        struct {
		FiberMinMbps        float64       `json:"fiber_min_mbps"`
		FiberMaxRTT         time.Duration `json:"fiber_max_rtt_ns"`
		BroadbandMinMbps    float64       `json:"broadband_min_mbps"`
		BroadbandMaxRTT     time.Duration `json:"broadband_max_rtt_ns"`
		MobileMinMbps       float64       `json:"mobile_min_mbps"`
		MobileMaxRTT        time.Duration `json:"mobile_max_rtt_ns"`
		SatelliteMinRTT     time.Duration `json:"satellite_min_rtt_ns"`
		IntermittentLossPct float64       `json:"intermittent_loss_percent"`
		MaxMissed           int           `json:"max_missed"`
	} `json:"thresholds"`
}

// MarshalJSON writes the monitor block's settings in the file's units.
func (m Monitor) MarshalJSON() ([]byte, error) {
	c := m.Classifier
	j := monitorJSON{
		ProbeInterval: m.ProbeInterval, SampleInterval: m.SampleInterval, Window: c.Window, LossWindow: c.LossWindow,
		MinSamples: c.MinSamples, HysteresisPercent: shown(c.Hysteresis, percent), ProbeTimeout: m.ProbeTimeout,
		ProbeBudget: m.Budget.Fraction, Active: m.Active, Passive: m.Passive,
		IdleAfter: m.IdleAfter, IdleSample: m.IdleSampleInterval, IdleProbe: m.IdleProbeInterval,
	}
	t := &j.Thresholds
	t.FiberMinMbps, t.FiberMaxRTT = shown(c.FiberMinBps, 1/bpsPerMbps), c.FiberMaxRTT
	t.BroadbandMinMbps, t.BroadbandMaxRTT = shown(c.BroadbandMinBps, 1/bpsPerMbps), c.BroadbandMaxRTT
	t.MobileMinMbps, t.MobileMaxRTT = shown(c.MobileMinBps, 1/bpsPerMbps), c.MobileMaxRTT
	t.SatelliteMinRTT, t.IntermittentLossPct, t.MaxMissed = c.SatelliteMinRTT, shown(c.IntermittentLoss, percent), c.MaxMissed
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes; the settings it does not
// write keep linkmon's defaults.
func (m *Monitor) UnmarshalJSON(b []byte) error {
	var j monitorJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*m = DefaultMonitor()
	c := &m.Classifier
	m.ProbeInterval, m.SampleInterval, c.Window, c.LossWindow = j.ProbeInterval, j.SampleInterval, j.Window, j.LossWindow
	c.MinSamples, c.Hysteresis, m.ProbeTimeout = j.MinSamples, j.HysteresisPercent/percent, j.ProbeTimeout
	m.Budget.Fraction, m.Active, m.Passive = j.ProbeBudget, j.Active, j.Passive
	if j.IdleAfter > 0 { // absent in JSON written before idle sampling: keep the defaults
		m.IdleAfter, m.IdleSampleInterval, m.IdleProbeInterval = j.IdleAfter, j.IdleSample, j.IdleProbe
	}
	t := j.Thresholds
	c.FiberMinBps, c.FiberMaxRTT = t.FiberMinMbps*bpsPerMbps, t.FiberMaxRTT
	c.BroadbandMinBps, c.BroadbandMaxRTT = t.BroadbandMinMbps*bpsPerMbps, t.BroadbandMaxRTT
	c.MobileMinBps, c.MobileMaxRTT = t.MobileMinMbps*bpsPerMbps, t.MobileMaxRTT
	c.SatelliteMinRTT, c.IntermittentLoss, c.MaxMissed = t.SatelliteMinRTT, t.IntermittentLossPct/percent, t.MaxMissed
	return nil
}
