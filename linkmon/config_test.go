package linkmon

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	edgesync "github.com/edge-sync/edge-sync"
)

func TestConfigValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	for field, mut := range map[string]func(*Config){
		"classifier: invalid linkmon config: min_samples": func(c *Config) { c.Classifier.MinSamples = 0 },
		"probe_budget: invalid linkmon config: fraction":  func(c *Config) { c.Budget.Fraction = 2 },
		"probe_interval":    func(c *Config) { c.ProbeInterval = 0 },
		"trains_per_probe":  func(c *Config) { c.TrainsPerProbe = 0 },
		"probe_timeout":     func(c *Config) { c.ProbeTimeout = -1 },
		"sample_interval":   func(c *Config) { c.SampleInterval = 10 * time.Second },
		"sample_timeout":    func(c *Config) { c.SampleTimeout = 0 },
		"active":            func(c *Config) { c.Active, c.Passive = false, false },
		"history_length":    func(c *Config) { c.HistoryLength = 0 },
		"classifier.window": func(c *Config) { c.Classifier.Window = 500 * time.Millisecond },
	} {
		c := Default()
		mut(&c)
		err := c.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v, want ErrInvalidConfig naming it", field, err)
		}
	}
	// The per-class overrides are the monitor's, checked by NewMonitor.
	d := -time.Second
	bad := map[edgesync.LinkClass]Override{edgesync.Mobile: {Interval: &d}}
	if _, err := NewMonitor(Default(), MonitorOptions{Profiles: bad}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "profile.mobile.interval") {
		t.Errorf("profile.mobile.interval: %v, want ErrInvalidConfig naming it", err)
	}
}

func TestMeasurementTextAndJSON(t *testing.T) {
	m := Measurement{BandwidthBps: 0.7e6, RTT: 612 * time.Millisecond, Jitter: 3 * time.Millisecond, Loss: 0.012, At: t0, Method: MethodBoth, Stale: true}
	if got, want := m.String(), "0.7 Mbit/s rtt=612ms jitter=3ms loss=1.2% both stale"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	var back Method
	if err := back.UnmarshalText([]byte("passive")); err != nil || back != MethodPassive {
		t.Errorf("UnmarshalText(passive) = %v %v", back, err)
	}
	if err := back.UnmarshalText([]byte("psychic")); !errors.Is(err, ErrInvalidMethod) {
		t.Errorf("UnmarshalText(psychic): %v", err)
	}
	for bps, want := range map[float64]string{64e3: "64 kbit/s", 1e6: "1 Mbit/s", 12.5e6: "12.5 Mbit/s", 120e6: "120 Mbit/s", 1.5e9: "1.5 Gbit/s"} {
		if got := FormatBps(bps); got != want {
			t.Errorf("FormatBps(%v) = %q, want %q", bps, got, want)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	sat, dz := edgesync.Satellite, edgesync.SyncDeltaZstd
	in := struct {
		M   Measurement
		S   Status
		P   SyncParameters
		Pin Pin
	}{
		M:   Measurement{BandwidthBps: 2e6, RTT: 600 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.01, At: t0, Method: MethodActive},
		S:   Status{Class: edgesync.Satellite, Since: t0, Samples: 3, LastChange: &ClassChange{Old: edgesync.Unknown, New: sat, Reason: "r"}},
		P:   DefaultProfiles()[edgesync.Satellite].Params,
		Pin: Pin{Class: &sat, Mode: &dz},
	}
	in.S.LastChange.Trigger = in.M
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if !strings.Contains(string(b), `"class":"satellite"`) || !strings.Contains(string(b), `"method":"active"`) || !strings.Contains(string(b), `"rtt_ns":600000000`) {
		t.Errorf("JSON lacks readable fields: %s", b)
	}
	out := in
	out.S.LastChange, out.Pin = nil, Pin{}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("unmarshal: %v", err)
	}
	if out.M != in.M || out.P != in.P || *out.S.LastChange != *in.S.LastChange || *out.Pin.Class != sat || *out.Pin.Mode != dz {
		t.Errorf("round trip changed the values:\n%+v\n%+v", in, out)
	}
}
