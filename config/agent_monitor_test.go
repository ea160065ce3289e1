package config

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edge-sync/edge-sync/linkmon"
)

const tlsAndEndpoint = `tls {
  ca = "a"
  cert = "b"
  key = "c"
}
endpoint "core" { address = "h:1" }
`

// TestMonitorDefaultsAreLinkmons: the config's monitor defaults are
// linkmon's, also after a file with an empty monitor block is read, so
// the two cannot drift apart.
func TestMonitorDefaultsAreLinkmons(t *testing.T) {
	if got := linkmon.Config(DefaultAgent().Monitor); got != linkmon.Default() {
		t.Fatalf("default agent's monitor %+v, linkmon's default %+v", got, linkmon.Default())
	}
	c, err := ParseAgent(strings.NewReader(tlsAndEndpoint+"monitor {\n  thresholds {}\n}\n"), "agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if got := linkmon.Config(c.Endpoints[0].Monitor); got != linkmon.Default() {
		t.Fatalf("parsed monitor %+v, linkmon's default %+v", got, linkmon.Default())
	}
}

// TestMonitorFileUnits: every setting of the monitor block arrives in
// linkmon's field, Mbit/s as bit/s and percent as a fraction.
func TestMonitorFileUnits(t *testing.T) {
	src := tlsAndEndpoint + `monitor {
  probe_interval       = "7s"
  sample_interval      = "200ms"
  window               = "40s"
  loss_window          = "25s"
  min_samples          = 4
  hysteresis_percent   = 15
  probe_timeout        = "3s"
  probe_budget_percent = 1
  active               = true
  passive              = false
  thresholds {
    fiber_min_mbps            = 200
    fiber_max_rtt             = "5ms"
    broadband_min_mbps        = 20
    broadband_max_rtt         = "40ms"
    mobile_min_mbps           = 2
    mobile_max_rtt            = "150ms"
    satellite_min_rtt         = "450ms"
    intermittent_loss_percent = 30
    max_missed                = 4
  }
}
`
	c, err := ParseAgent(strings.NewReader(src), "agent.hcl")
	if err != nil {
		t.Fatal(err)
	}
	m := c.Monitor
	cl := m.Classifier
	checks := []struct {
		name      string
		got, want any
	}{
		{"probe_interval", m.ProbeInterval, 7 * time.Second},
		{"sample_interval", m.SampleInterval, 200 * time.Millisecond},
		{"window", cl.Window, 40 * time.Second},
		{"loss_window", cl.LossWindow, 25 * time.Second},
		{"min_samples", cl.MinSamples, 4},
		{"hysteresis_percent", cl.Hysteresis, 0.15},
		{"probe_timeout", m.ProbeTimeout, 3 * time.Second},
		{"probe_budget_percent", m.Budget.Fraction, 0.01},
		{"active", m.Active, true},
		{"passive", m.Passive, false},
		{"fiber_min_mbps", cl.FiberMinBps, 200e6},
		{"fiber_max_rtt", cl.FiberMaxRTT, 5 * time.Millisecond},
		{"broadband_min_mbps", cl.BroadbandMinBps, 20e6},
		{"broadband_max_rtt", cl.BroadbandMaxRTT, 40 * time.Millisecond},
		{"mobile_min_mbps", cl.MobileMinBps, 2e6},
		{"mobile_max_rtt", cl.MobileMaxRTT, 150 * time.Millisecond},
		{"satellite_min_rtt", cl.SatelliteMinRTT, 450 * time.Millisecond},
		{"intermittent_loss_percent", cl.IntermittentLoss, 0.30},
		{"max_missed", cl.MaxMissed, 4},
	}
	for _, k := range checks {
		if !reflect.DeepEqual(k.got, k.want) {
			t.Errorf("%s: got %v, want %v", k.name, k.got, k.want)
		}
	}
	if c.Endpoints[0].Monitor != m {
		t.Errorf("the endpoint does not inherit the agent's monitor: %+v", c.Endpoints[0].Monitor)
	}
}

// TestMonitorCombinationRefused: settings each in range that the monitor
// cannot work with are refused when the file is read, with linkmon's
// reason, at the monitor block's line.
func TestMonitorCombinationRefused(t *testing.T) {
	for name, block := range map[string]string{
		"bands overlap": `monitor { hysteresis_percent = 90 }`,
		"nothing measures": `monitor {
  active  = false
  passive = false
}`,
		"window too short": `endpoint "b" {
  address = "h:2"
  monitor {
    window      = "1s"
    min_samples = 8
  }
}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseAgent(strings.NewReader(tlsAndEndpoint+block+"\n"), "agent.hcl")
			var fe *FieldError
			if !errors.Is(err, linkmon.ErrInvalidConfig) || !errors.As(err, &fe) {
				t.Fatalf("ParseAgent: %v, want a FieldError wrapping linkmon.ErrInvalidConfig", err)
			}
			t.Log(err)
			if !strings.HasSuffix(fe.Field, "monitor") || fe.Pos.Start.Line < 7 {
				t.Errorf("error %q names %q at line %d, want the monitor block at line 7 or later", err, fe.Field, fe.Pos.Start.Line)
			}
		})
	}
}

// TestMonitorJSONInFileUnits: transport.config shows each endpoint's
// monitor as it always did, in the file's units; it reads back to the
// same settings.
func TestMonitorJSONInFileUnits(t *testing.T) {
	b, err := json.Marshal(DefaultMonitor())
	if err != nil {
		t.Fatal(err)
	}
	// snake_case like every answer of the control API (docs/control-api.md).
	const want = `{"probe_interval_ns":5000000000,"sample_interval_ns":250000000,"window_ns":30000000000,"loss_window_ns":20000000000,` +
		`"min_samples":3,"hysteresis_percent":20,"probe_timeout_ns":5000000000,"probe_budget":0.02,"active":true,"passive":true,` +
		`"idle_after_ns":10000000000,"idle_sample_interval_ns":5000000000,"idle_probe_interval_ns":600000000000,` +
		`"thresholds":{"fiber_min_mbps":100,"fiber_max_rtt_ns":10000000,"broadband_min_mbps":10,"broadband_max_rtt_ns":50000000,` +
		`"mobile_min_mbps":1,"mobile_max_rtt_ns":200000000,"satellite_min_rtt_ns":500000000,"intermittent_loss_percent":20,"max_missed":2}}`
	if string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
	m := DefaultMonitor()
	m.Classifier.Hysteresis, m.Classifier.FiberMinBps, m.Classifier.IntermittentLoss = 0.57, 250e6, 0.07
	m.Classifier.Window, m.Budget.Fraction, m.Passive = 45*time.Second, 0.015, false
	b, err = json.Marshal(Endpoint{Name: "core", Monitor: m})
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); !strings.Contains(s, `"hysteresis_percent":57,`) || !strings.Contains(s, `"fiber_min_mbps":250,`) || !strings.Contains(s, `"intermittent_loss_percent":7,`) {
		t.Errorf("JSON %s does not show the file's units", s)
	}
	var back Endpoint
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Monitor != m {
		t.Errorf("read back\n%+v\nwant\n%+v", back.Monitor, m)
	}
}
