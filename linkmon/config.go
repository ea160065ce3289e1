package linkmon

import (
	"fmt"
	"time"
)

// Config is how a Monitor measures and classifies one endpoint's link;
// every field has a default (Default), and the config package reads the
// file's monitor block onto it (config.Monitor is this type). What the
// monitor does with the class, the per-class overrides and the operator's
// pin, is not here: see MonitorOptions.Profiles, SetProfile and SetPin.
// Config is comparable.
type Config struct {
	// Classifier holds the class thresholds and hysteresis.
	Classifier ClassifierConfig
	// Budget limits active probing (2 % of capacity over any minute).
	Budget BudgetConfig
	// ProbeInterval is the period of the bandwidth probe (packet trains),
	// stretched when the budget needs it (5 s).
	ProbeInterval time.Duration
	// TrainsPerProbe is how many trains one bandwidth probe sends; the
	// estimate is their median (3).
	TrainsPerProbe int
	// ProbeTimeout bounds one bandwidth probe; past it the probe yields the
	// last measurement marked stale (5 s).
	ProbeTimeout time.Duration
	// SampleInterval is the period of light samples (pings for RTT, jitter
	// and loss, and passive counters); the classifier's MinSamples counts
	// these (250 ms: 3 samples and a median flip within about 2 s).
	SampleInterval time.Duration
	// SampleTimeout: a light sample with no answer within
	// max(SampleTimeout, 2 × median RTT) is stale (1 s).
	SampleTimeout time.Duration
	// Active turns probes (pings and trains) on.
	Active bool
	// Passive turns measurement from real traffic on.
	Passive bool
	// HistoryLength bounds the measurements kept for History (3600: 15
	// minutes of light samples).
	HistoryLength int
	// An idle link (nothing sent for IdleAfter, 10 s) is sampled every
	// IdleSampleInterval (5 s) and probed every IdleProbeInterval (10 min),
	// a check train at most every IdleSampleInterval; traffic, Busy or a
	// change brings the busy schedule back
	// at once (idle.go, docs/linkmon.md "Idle links"). An idle interval
	// below its busy one counts as the busy one; the idle sample interval
	// is at most Window/MinSamples, so that the window keeps its samples.
	IdleAfter          time.Duration
	IdleSampleInterval time.Duration
	IdleProbeInterval  time.Duration
}

// Default returns the defaults, the only copy of them
// (docs/design.md#link-monitor-defaults and docs/linkmon.md list them).
func Default() Config {
	return Config{
		Classifier:     DefaultClassifierConfig(),
		Budget:         DefaultBudgetConfig(),
		ProbeInterval:  5 * time.Second,
		TrainsPerProbe: 3,
		ProbeTimeout:   5 * time.Second,
		SampleInterval: 250 * time.Millisecond,
		SampleTimeout:  time.Second,
		Active:         true,
		Passive:        true,
		HistoryLength:  3600,

		IdleAfter:          10 * time.Second,
		IdleSampleInterval: 5 * time.Second,
		IdleProbeInterval:  10 * time.Minute,
	}
}

// Validate reports the first bad field by its config name.
func (c Config) Validate() error {
	if err := c.Classifier.Validate(); err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	if err := c.Budget.Validate(); err != nil {
		return fmt.Errorf("probe_budget: %w", err)
	}
	switch {
	case c.ProbeInterval <= 0:
		return cfgErr("probe_interval", "%v must be positive", c.ProbeInterval)
	case c.TrainsPerProbe < 1 || c.TrainsPerProbe > 16:
		return cfgErr("trains_per_probe", "%d must be 1..16", c.TrainsPerProbe)
	case c.ProbeTimeout <= 0:
		return cfgErr("probe_timeout", "%v must be positive", c.ProbeTimeout)
	case c.SampleInterval <= 0 || c.SampleInterval > c.ProbeInterval:
		return cfgErr("sample_interval", "%v must be positive and at most probe_interval (%v)", c.SampleInterval, c.ProbeInterval)
	case c.SampleTimeout <= 0:
		return cfgErr("sample_timeout", "%v must be positive", c.SampleTimeout)
	case !c.Active && !c.Passive:
		return cfgErr("active", "active and passive measurement are both off: nothing would measure the link")
	case c.IdleAfter <= 0:
		return cfgErr("idle_after", "%v must be positive", c.IdleAfter)
	case c.IdleSampleInterval <= 0:
		return cfgErr("idle_sample_interval", "%v must be positive", c.IdleSampleInterval)
	case c.IdleProbeInterval <= 0:
		return cfgErr("idle_probe_interval", "%v must be positive", c.IdleProbeInterval)
	case c.HistoryLength < 1:
		return cfgErr("history_length", "%d must be at least 1", c.HistoryLength)
	case time.Duration(c.Classifier.MinSamples)*c.SampleInterval > c.Classifier.Window:
		return cfgErr("classifier.window", "%v cannot hold min_samples (%d) samples at sample_interval %v",
			c.Classifier.Window, c.Classifier.MinSamples, c.SampleInterval)
	}
	return nil
}
