package agent

import (
	"fmt"

	"github.com/edge-sync/edge-sync/config"
	"github.com/edge-sync/edge-sync/linkmon"
)

// monitorConfig maps the config file's monitor block onto the link
// monitor's configuration. Settings the file does not have (trains per
// probe, sample timeout, budget window and floor, min outage, median
// samples, history length) keep linkmon's defaults; per-class profile
// overrides are mapped by the caller. The result is validated, so a bad
// combination is reported with linkmon's field name.
func monitorConfig(m config.Monitor) (linkmon.Config, error) {
	c := linkmon.Default()
	c.ProbeInterval = m.ProbeInterval
	c.SampleInterval = m.SampleInterval
	c.ProbeTimeout = m.ProbeTimeout
	c.Active = m.Active
	c.Passive = m.Passive
	c.Budget.Fraction = m.ProbeBudget

	cl := &c.Classifier
	cl.Window = m.Window
	cl.LossWindow = m.LossWindow
	cl.MinSamples = m.MinSamples
	cl.HysteresisPercent = m.HysteresisPercent
	t := m.Thresholds
	cl.FiberMinBps = t.FiberMinMbps * 1e6
	cl.FiberMaxRTT = t.FiberMaxRTT
	cl.BroadbandMinBps = t.BroadbandMinMbps * 1e6
	cl.BroadbandMaxRTT = t.BroadbandMaxRTT
	cl.MobileMinBps = t.MobileMinMbps * 1e6
	cl.MobileMaxRTT = t.MobileMaxRTT
	cl.SatelliteMinRTT = t.SatelliteMinRTT
	cl.IntermittentLoss = t.IntermittentLossPct / 100
	cl.MaxMissed = t.MaxMissed

	if err := c.Validate(); err != nil {
		return linkmon.Config{}, fmt.Errorf("monitor config: %w", err)
	}
	return c, nil
}
