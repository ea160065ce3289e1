package agent

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/linkmon"
)

// TestMonitorConfigDefaults: config.DefaultMonitor maps onto
// linkmon.Default field by field, so the file's defaults and the monitor's
// tuning (a median of 9 samples at 4 a second) cannot drift apart.
func TestMonitorConfigDefaults(t *testing.T) {
	got, err := monitorConfig(config.DefaultMonitor())
	if err != nil {
		t.Fatal(err)
	}
	want := linkmon.Default()
	gv, wv := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := range gv.NumField() {
		name := gv.Type().Field(i).Name
		if !reflect.DeepEqual(gv.Field(i).Interface(), wv.Field(i).Interface()) {
			t.Errorf("%s: mapped %+v, linkmon default %+v", name, gv.Field(i).Interface(), wv.Field(i).Interface())
		}
	}
}

// TestMonitorConfigMapsEveryField: a non-default value in each config
// field arrives in the matching linkmon field.
func TestMonitorConfigMapsEveryField(t *testing.T) {
	m := config.DefaultMonitor()
	m.ProbeInterval = 7 * time.Second
	m.SampleInterval = 200 * time.Millisecond
	m.Window = 40 * time.Second
	m.LossWindow = 25 * time.Second
	m.MinSamples = 4
	m.HysteresisPercent = 15
	m.ProbeTimeout = 3 * time.Second
	m.ProbeBudget = 0.01
	m.Passive = false
	m.Thresholds.FiberMinMbps = 200
	m.Thresholds.FiberMaxRTT = 5 * time.Millisecond
	m.Thresholds.BroadbandMinMbps = 20
	m.Thresholds.BroadbandMaxRTT = 40 * time.Millisecond
	m.Thresholds.MobileMinMbps = 2
	m.Thresholds.MobileMaxRTT = 150 * time.Millisecond
	m.Thresholds.SatelliteMinRTT = 450 * time.Millisecond
	m.Thresholds.IntermittentLossPct = 30
	m.Thresholds.MaxMissed = 4
	c, err := monitorConfig(m)
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Classifier
	checks := []struct {
		name      string
		got, want any
	}{
		{"probe_interval", c.ProbeInterval, 7 * time.Second},
		{"sample_interval", c.SampleInterval, 200 * time.Millisecond},
		{"window", cl.Window, 40 * time.Second},
		{"loss_window", cl.LossWindow, 25 * time.Second},
		{"min_samples", cl.MinSamples, 4},
		{"hysteresis_percent", cl.HysteresisPercent, 15.0},
		{"probe_timeout", c.ProbeTimeout, 3 * time.Second},
		{"probe_budget", c.Budget.Fraction, 0.01},
		{"active", c.Active, true},
		{"passive", c.Passive, false},
		{"fiber_min_mbps", cl.FiberMinBps, 200e6},
		{"fiber_max_rtt", cl.FiberMaxRTT, 5 * time.Millisecond},
		{"broadband_min_mbps", cl.BroadbandMinBps, 20e6},
		{"broadband_max_rtt", cl.BroadbandMaxRTT, 40 * time.Millisecond},
		{"mobile_min_mbps", cl.MobileMinBps, 2e6},
		{"mobile_max_rtt", cl.MobileMaxRTT, 150 * time.Millisecond},
		{"satellite_min_rtt", cl.SatelliteMinRTT, 450 * time.Millisecond},
		{"intermittent_loss_pct", cl.IntermittentLoss, 0.30},
		{"max_missed", cl.MaxMissed, 4},
	}
	for _, k := range checks {
		if !reflect.DeepEqual(k.got, k.want) {
			t.Errorf("%s: got %v, want %v", k.name, k.got, k.want)
		}
	}
}

// TestMonitorConfigInvalid: a bad combination is refused with
// linkmon's error.
func TestMonitorConfigInvalid(t *testing.T) {
	m := config.DefaultMonitor()
	m.Active, m.Passive = false, false
	if _, err := monitorConfig(m); !errors.Is(err, linkmon.ErrInvalidConfig) {
		t.Fatalf("active and passive off: %v, want ErrInvalidConfig", err)
	}
}
